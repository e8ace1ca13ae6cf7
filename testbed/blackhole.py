"""A port that drops SYNs, like a security group without the rule: the `blocked-port` fault.

A listening socket with backlog 0 whose accept queue we fill ourselves and never drain: the kernel
then drops further SYNs, so connects time out exactly as they do against a security group that has
no rule for the port (no RST, no ICMP), without iptables or root.
"""

from __future__ import annotations

import contextlib
import socket


class Blackhole:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener: socket.socket | None = None
        self._fillers: list[socket.socket] = []
        self.port = 0

    def open(self) -> int:
        lst = socket.socket()
        lst.bind((self.host, 0))
        lst.listen(0)
        self._listener = lst
        self.port = lst.getsockname()[1]
        # Fill the accept queue until a connect no longer completes.
        for _ in range(4):
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect((self.host, self.port))
            except OSError:
                c.close()
                break
            self._fillers.append(c)
        return self.port

    def close(self) -> None:
        for c in self._fillers:
            with contextlib.suppress(OSError):
                c.close()
        self._fillers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
