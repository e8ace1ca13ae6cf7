import sys

from albprobe.cli import main

sys.exit(main())
