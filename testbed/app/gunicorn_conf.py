"""gunicorn's config file for the testbed app (``-c``), run once in the master before it forks
its workers: it imports the libraries the app uses, so that each worker (at start, and again at
every kill, recycle or reload) imports only the app's own modules: its boot costs 0.30 s of CPU
instead of 0.57 s (bench/bench_process_starts.py).

Only libraries, none of the app's modules and no Django settings: each worker still reads the
testbed's state (faults, allowed origins) when it imports testbed.app.settings, so a SIGHUP
reload still takes a changed fault. This is not gunicorn's --preload, which would load the app
in the master once for all workers.
"""

import corsheaders.defaults  # noqa: F401
import corsheaders.middleware  # noqa: F401
import django.core.handlers.wsgi  # noqa: F401
import django.core.wsgi  # noqa: F401
import django.http  # noqa: F401
import django.middleware.common  # noqa: F401
import django.urls  # noqa: F401
import django.views.decorators.csrf  # noqa: F401
