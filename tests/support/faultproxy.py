"""A TCP fault proxy for tests: listens on 127.0.0.1 (random port) and forwards to an upstream
(the moto S3 server), injecting on request:

- latency: a delay before every forwarded chunk;
- resets: a share of connections is cut with a TCP RST after a random number of bytes;
- outage: while on, new connections are reset at once ("refuse") or accepted and never
  answered ("blackhole"), and open connections are cut; it can also switch itself on once a
  given number of bytes went upstream, to hit a job in the middle of its upload.

Threads, not asyncio: the tests that use it are synchronous and the traffic is small.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

OutageMode = Literal["refuse", "blackhole"]
_CHUNK = 64 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout).

    close() alone does not wake a thread blocked in recv() on the socket, and while that
    call holds it the kernel keeps the connection open: the peer would wait for an answer
    for ever. shutdown(SHUT_RD) wakes the reader first without sending anything."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket | None
    cut_after: int | None           # reset after this many bytes (both ways), if set
    moved: int = 0
    finished: int = 0
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self, *, reset: bool) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


class FaultProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1",
                 seed: int = 1):
        self.upstream = (upstream_host, upstream_port)
        self.latency = 0.0
        self.reset_probability = 0.0
        self.reset_max_bytes = 256 * 1024
        self.outage: OutageMode | None = None
        self.outage_after_bytes: int | None = None
        self._outage_armed_mode: OutageMode = "refuse"
        self.stats = ProxyStats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy",
                                        daemon=True)

    # -- control ----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._cut_all(reset=False)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def set_outage(self, mode: OutageMode | None) -> None:
        """Start (mode given) or end (None) a full outage; starting one cuts open connections."""
        with self._lock:
            self.outage = mode
            self.outage_after_bytes = None
        if mode is not None:
            self._cut_all(reset=True)
        else:
            held, self._held = self._held, []
            for sock in held:
                _reset(sock)

    def outage_after(self, upstream_bytes: int, mode: OutageMode = "refuse") -> None:
        """Switch an outage on by itself once this many more bytes have gone upstream."""
        with self._lock:
            self.outage_after_bytes = self.stats.bytes_up + upstream_bytes
            self._outage_armed_mode = mode

    def wait_for_outage(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outage is not None:
                return True
            time.sleep(0.05)
        return False

    # -- plumbing ---------------------------------------------------------------------------

    def _cut_all(self, *, reset: bool) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close(reset=reset)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.stats.connections += 1
                outage = self.outage
            if outage == "refuse":
                with self._lock:
                    self.stats.refused += 1
                _reset(client)
                continue
            if outage == "blackhole":
                self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                cut = (self._random.randint(0, self.reset_max_bytes)
                       if self._random.random() < self.reset_probability else None)
            pair = _Pair(client, upstream, cut)
            with self._lock:
                self._pairs.append(pair)
            for source, sink, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(pair, source, sink, up),
                                 daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                if self.latency:
                    time.sleep(self.latency)
                if pair.cut_after is not None and pair.moved + len(data) >= pair.cut_after:
                    with self._lock:
                        self.stats.resets += 1
                    pair.close(reset=True)
                    return
                sink.sendall(data)
                pair.moved += len(data)
                with self._lock:
                    if up:
                        self.stats.bytes_up += len(data)
                    else:
                        self.stats.bytes_down += len(data)
                    armed = self.outage_after_bytes
                    trigger = armed is not None and self.stats.bytes_up >= armed
                if trigger:
                    self.set_outage(self._outage_armed_mode)
                    return
        except OSError:
            pass
        # One side finished: half-close the other; when both have, close the pair.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with pair.lock:
            pair.finished += 1
            done = pair.finished == 2
        if done:
            pair.close(reset=False)
            with self._lock:
                if pair in self._pairs:
                    self._pairs.remove(pair)
