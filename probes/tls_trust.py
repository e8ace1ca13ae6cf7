"""What the httpx probes trust: the system's CAs, or a CA bundle (the testbed's own CA)."""

from __future__ import annotations

import ssl


def httpx_verify(ca_bundle: str | None, verify: bool = True) -> ssl.SSLContext | bool:
    """httpx's `verify=`: a verifying context trusting ``ca_bundle`` when given, else ``verify``."""
    if ca_bundle and verify:
        return ssl.create_default_context(cafile=ca_bundle)
    return verify
