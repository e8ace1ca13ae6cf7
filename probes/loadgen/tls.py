"""TLS for the load user: verified like a browser, against the configured CA bundle.

Locust's FastHttpUser skips verification by default (`insecure=True`); a browser never does, and
a load test that accepts any certificate cannot tell a broken HTTPS listener from a working one.
"""

from __future__ import annotations

import ssl
from typing import Any


def ssl_context(ca_bundle: str | None, cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (hostname checked) that trusts ``ca_bundle`` when given, else
    ``cafile`` (geventhttpclient hands in certifi's bundle), else the system's store."""
    import gevent.ssl

    ctx: Any = gevent.ssl.create_default_context(cafile=ca_bundle or cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
