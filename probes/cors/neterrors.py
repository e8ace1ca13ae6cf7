"""Map a client-side exception (or its class name) to the net:: error Chromium would log, and
to the short error class recorded in the run directory."""

from __future__ import annotations

import socket
import ssl

_BY_NAME = {
    "ConnectionRefusedError": "net::ERR_CONNECTION_REFUSED",
    "ConnectionResetError": "net::ERR_CONNECTION_RESET",
    "ConnectionAbortedError": "net::ERR_CONNECTION_ABORTED",
    "BrokenPipeError": "net::ERR_CONNECTION_RESET",
    "gaierror": "net::ERR_NAME_NOT_RESOLVED",
    "ConnectTimeout": "net::ERR_CONNECTION_TIMED_OUT",
    "ConnectTimeoutError": "net::ERR_CONNECTION_TIMED_OUT",
    "ReadTimeout": "net::ERR_TIMED_OUT",
    "WriteTimeout": "net::ERR_TIMED_OUT",
    "PoolTimeout": "net::ERR_TIMED_OUT",
    "TimeoutError": "net::ERR_TIMED_OUT",
    "timeout": "net::ERR_TIMED_OUT",
    "RemoteProtocolError": "net::ERR_EMPTY_RESPONSE",
    "RemoteDisconnected": "net::ERR_EMPTY_RESPONSE",
    "IncompleteRead": "net::ERR_CONTENT_LENGTH_MISMATCH",
    "SSLError": "net::ERR_SSL_PROTOCOL_ERROR",
    "SSLCertVerificationError": "net::ERR_CERT_AUTHORITY_INVALID",
}


def _chain(error: BaseException):  # type: ignore[no-untyped-def]
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def error_class(error: BaseException | str | None) -> str:
    """The most specific error class name: the root OS/socket error when one is wrapped
    (httpx.ConnectError -> ConnectionRefusedError)."""
    if error is None:
        return "unknown"
    if isinstance(error, str):
        return error
    best = type(error).__name__
    generic_os = None
    for e in _chain(error):
        name = type(e).__name__
        if isinstance(e, socket.gaierror | ssl.SSLError):
            return name
        if isinstance(e, OSError) and not isinstance(e, socket.timeout):
            if type(e) is not OSError:
                return name  # ConnectionRefusedError, ConnectionResetError, ...
            generic_os = generic_os or name
        elif name in _BY_NAME:
            best = name
    return best if best in _BY_NAME or generic_os is None else generic_os


def net_error(error: BaseException | str | None) -> str:
    """Chromium's net error name for a client-side failure (net::ERR_FAILED when unknown)."""
    if isinstance(error, str) and error.startswith("net::"):
        return error
    if isinstance(error, BaseException):
        for e in _chain(error):
            name = type(e).__name__
            if name in _BY_NAME:
                return _BY_NAME[name]
        text = str(error).lower()
        if "refused" in text:
            return "net::ERR_CONNECTION_REFUSED"
        if "reset" in text:
            return "net::ERR_CONNECTION_RESET"
        if "timed out" in text or "timeout" in text:
            return "net::ERR_TIMED_OUT"
        if "disconnected without" in text or "empty" in text:
            return "net::ERR_EMPTY_RESPONSE"
        return "net::ERR_FAILED"
    if isinstance(error, str):
        return _BY_NAME.get(error, "net::ERR_FAILED")
    return "net::ERR_FAILED"
