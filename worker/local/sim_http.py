"""The exchange simulator's HTTP framing: a threading server that can drop keep-alive sockets.

The simulator computes answers (:class:`Answer`); this module only turns them into
HTTP/1.1 responses. Stopping must not wait for idle keep-alive connections of a client
that never closes them, so the server tracks its sockets and shuts them down on stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = ["Answer", "Responder", "SimServer", "error_body"]

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 418: "I'm a teapot",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip


def error_body(code: int, msg: str) -> str:
    """Binance's error JSON: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":"))


@dataclass
class Answer:
    """One HTTP answer of the simulator."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Responder(Protocol):
    """What the server asks for each request (the simulator)."""

    def answer(self, method: str, path: str, query: str, body: bytes) -> Answer: ...


class SimServer(ThreadingHTTPServer):
    """Tracks open connections so stop() can close keep-alive sockets and join threads."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], sim: Responder) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Frames the simulator's answers as HTTP/1.1 with keep-alive, in one write each."""

    protocol_version = "HTTP/1.1"
    server_version = "exchange-sim"
    timeout = 30  # idle keep-alive connections end after this many seconds
    server: SimServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.server.sim.answer(method, parts.path, parts.query, body)
        except Exception:  # a simulator bug must show up as a 500, not a dropped socket
            log.exception("exchange simulator failed on %s %s", method, self.path)
            answer = Answer(500, error_body(-1001, "simulator error"))
        payload = answer.body.encode()
        head = [f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Error')}"]
        head.append("Content-Type: application/json;charset=UTF-8")
        head.append(f"Content-Length: {len(payload)}")
        head.extend(f"{k}: {v}" for k, v in answer.headers.items())
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        self.wfile.flush()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("exchange-sim: " + format, *args)
