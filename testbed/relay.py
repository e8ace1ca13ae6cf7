"""A user-space TCP relay that adds one-way latency, for the keep-alive race on loopback.

The kernel here has no netem. On bare loopback the target's FIN reaches the proxy instantly, so the
proxy never reuses a connection the target has already closed. Delaying every byte *and the FIN*
by D ms in each direction opens the real-world window: for D ms after gunicorn closes an idle
keep-alive connection, the proxy still believes it is open, sends a request on it, and gets the
close instead of a response -> 502 ("target closed the connection ... while the load balancer had
an outstanding request").

Run as `python -m testbed.relay --listen 127.0.0.1:P --upstream 127.0.0.2:Q --delay-ms 150`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct

_EOF = object()
_RESET = object()


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a kernel does for data sent to a closed socket."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader -> writer, delivering each chunk (and the EOF or reset) ``delay`` later."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, item = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if item is _EOF:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            if item is _RESET:
                _rst(writer)
                return
            try:
                writer.write(item)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    sender = asyncio.create_task(deliver())
    try:
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionResetError, OSError):
                queue.put_nowait((loop.time() + delay, _RESET))
                break
            if not data:
                queue.put_nowait((loop.time() + delay, _EOF))
                break
            queue.put_nowait((loop.time() + delay, data))
        await sender
    finally:
        sender.cancel()


async def _handle(
    down_r: asyncio.StreamReader,
    down_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
    delay: float,
) -> None:
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError:
        _rst(down_w)  # the target refused: pass the refusal on as a reset
        return
    try:
        await asyncio.gather(_pump(down_r, up_w, delay), _pump(up_r, down_w, delay))
    except asyncio.CancelledError:
        pass  # the relay is shutting down
    finally:
        for w in (up_w, down_w):
            with contextlib.suppress(OSError):
                w.close()


async def serve(listen: tuple[str, int], upstream: tuple[str, int], delay_ms: float) -> None:
    delay = delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, upstream, delay), listen[0], listen[1], reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, type=_hostport)
    p.add_argument("--upstream", required=True, type=_hostport)
    p.add_argument("--delay-ms", type=float, default=150.0)
    a = p.parse_args(argv)
    asyncio.run(serve(a.listen, a.upstream, a.delay_ms))


if __name__ == "__main__":
    main()
