"""Settings of the testbed API, shaped like the production Django API behind the ALB."""

from __future__ import annotations

from corsheaders.defaults import default_headers

from testbed.app.state import read_state

_state = read_state()
_faults = set(_state.get("faults", ()))
TARGET_IP = _state.get("target_ip", "127.0.0.2")
FRONT_ORIGIN = _state.get("front_origin", "https://hakwonplus.com")

SECRET_KEY = "albprobe-testbed-not-a-secret"
DEBUG = False
ROOT_URLCONF = "testbed.app.urls"
WSGI_APPLICATION = "testbed.app.wsgi.application"
USE_TZ = True
DATABASES: dict = {}
INSTALLED_APPS = ["corsheaders"]

# The ALB health checker sends `Host: <target private IP>:<port>`. Production lists the public name
# only; the `health-host` fault reproduces that, so health checks get Django's 400 (DisallowedHost).
ALLOWED_HOSTS = ["api.hakwonplus.com", "localhost", "127.0.0.1", "[::1]"]
if "health-host" not in _faults:
    ALLOWED_HOSTS.append(TARGET_IP)

# django-cors-headers: CorsMiddleware must come before any middleware that can answer (CommonMiddleware).
MIDDLEWARE = [
    "testbed.app.faults.TargetMiddleware",
    "testbed.app.replay.ReplayTimeMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "testbed.app.faults.HangMiddleware",
]
CORS_ALLOWED_ORIGINS = [FRONT_ORIGIN]
if "cors-misconfig" in _faults:
    # The classic slip: only the www host made it into the settings.
    CORS_ALLOWED_ORIGINS = ["https://www.hakwonplus.com"]
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_HEADERS = (*default_headers, "x-client")
CORS_PREFLIGHT_MAX_AGE = 600
CSRF_TRUSTED_ORIGINS = [FRONT_ORIGIN]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.security.DisallowedHost": {"handlers": ["stderr"], "level": "WARNING"}},
}
