"""albprobe: synthetic traffic and load probe for a Django API behind an AWS ALB (the CLI layer)."""

from core import __version__

__all__ = ["__version__"]
