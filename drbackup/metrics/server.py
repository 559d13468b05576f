"""The /metrics HTTP(S) endpoint: a small threaded HTTP server in the daemon's process, with
optional TLS and HTTP basic auth from the config. It serves what the collector computes from
state; it never starts a process or reaches a store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from drbackup.config.models import Config
from drbackup.errors import ConfigError
from drbackup.metrics.collector import StateCollector
from drbackup.metrics.live import LiveView
from drbackup.state import StateDB

log = logging.getLogger(__name__)
_LANDING = (b"<html><head><title>drbackup</title></head><body><h1>drbackup</h1>"
            b'<p><a href="/metrics">metrics</a></p></body></html>\n')


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:9917', '[::1]:9917', 'localhost:0' -> (host, port). Raises ConfigError."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"daemon.metrics_listen {value!r} is not host:port",
                          "write it as 127.0.0.1:9917 or [::1]:9917 (port 0: any free port)")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - an explicit ':port' means every address
    return host, int(port_text)


def build_registry(config: Config, state: StateDB, live: LiveView | None = None, *,
                   process_metrics: bool = True) -> tuple[CollectorRegistry, StateCollector]:
    """A prometheus_client registry holding the drbackup collector (and process metrics), for
    callers that want the generic API; the endpoint itself uses `exposition()`."""
    registry = CollectorRegistry(auto_describe=False)
    collector = StateCollector(config, state, live)
    registry.register(collector)
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry, collector


def _process_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def exposition(collector: StateCollector, extra: CollectorRegistry | None = None) -> bytes:
    """The text exposition: drbackup's families (fast path) plus any extra registry."""
    body = collector.render().encode()
    if extra is not None:
        body += generate_latest(extra)
    return body


def _read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.__class__.__name__}",
                          "check the file exists and is readable by the drbackup user") from None


def _digest(user: str, password: str) -> bytes:
    return hashlib.sha256(f"{user}\0{password}".encode()).digest()


# Bounds on the threads a client can make the daemon hold (#14): each connection gets a thread
# for at most _Handler.timeout per read; beyond these counts a new connection is closed at once.
MAX_CONNECTIONS = 16
MAX_CONNECTIONS_PER_CLIENT = 4
_REFUSAL_LOG_INTERVAL = 60.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # backlog: a flood is accepted and closed, not left in SYN retries
    collector: StateCollector
    process: CollectorRegistry
    expected_auth: bytes | None
    tls: ssl.SSLContext | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots_lock = threading.Lock()
        self._open: dict[str, int] = {}
        self._last_refusal_log = 0.0

    def _take_slot(self, client: str) -> bool:
        with self._slots_lock:
            if (sum(self._open.values()) >= MAX_CONNECTIONS
                    or self._open.get(client, 0) >= MAX_CONNECTIONS_PER_CLIENT):
                now = time.monotonic()
                if now - self._last_refusal_log >= _REFUSAL_LOG_INTERVAL:
                    self._last_refusal_log = now
                    log.warning("metrics: refusing a connection from %s: %d open (at most %d, "
                                "%d per client); a scraper is stuck or someone floods the port",
                                client, sum(self._open.values()), MAX_CONNECTIONS,
                                MAX_CONNECTIONS_PER_CLIENT)
                return False
            self._open[client] = self._open.get(client, 0) + 1
            return True

    def _give_slot(self, client: str) -> None:
        with self._slots_lock:
            left = self._open.get(client, 1) - 1
            if left > 0:
                self._open[client] = left
            else:
                self._open.pop(client, None)

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0])
        if not self._take_slot(client):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._give_slot(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._give_slot(str(client_address[0]))

    def handle_error(self, request: object, client_address: object) -> None:
        # A failed TLS handshake or a dropped connection is the client's problem: log it
        # quietly instead of printing a traceback to stderr.
        log.debug("metrics: request from %s failed", client_address, exc_info=True)

    def authorized(self, header: str | None) -> bool:
        if self.expected_auth is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(
                ":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(_digest(user, password), self.expected_auth)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # seconds a read may wait: a silent client frees its slot by then
    server_version = "drbackup"
    sys_version = ""

    def setup(self) -> None:
        if self.server.tls is not None:
            # TLS handshake here, in the request's own thread, so a slow client cannot stall
            # the accept loop.
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            log.debug("metrics: connection from %s failed: %s", self.client_address[0], exc)

    def do_GET(self) -> None:
        if not self.server.authorized(self.headers.get("Authorization")):
            body = b"authentication required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="drbackup metrics"')
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        path = urlsplit(self.path).path
        if path == "/metrics":
            content_type = CONTENT_TYPE_LATEST
            try:
                body = exposition(self.server.collector, self.server.process)
                status = 200
            except Exception:
                log.exception("metrics: building the exposition failed")
                body, status, content_type = b"metrics failed; see the log\n", 500, "text/plain"
        elif path == "/":
            body, status, content_type = _LANDING, 200, "text/html; charset=utf-8"
        else:
            body, status, content_type = b"not found\n", 404, "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics: %s " + format, self.client_address[0], *args)


class MetricsServer:
    """A running /metrics endpoint. `address` is host:port as bound (port 0 resolved)."""

    def __init__(self, server: _Server, collector: StateCollector):
        self._server = server
        self.collector = collector
        self._thread = threading.Thread(target=server.serve_forever, name="drbackup-metrics",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self._server.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}/metrics"

    def update_config(self, config: Config) -> None:
        """After a config reload: export the new agencies, sources and objectives. (The
        listen address, TLS and auth settings take effect at the next start.)"""
        self.collector.set_config(config)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def serve_metrics(config: Config, state: StateDB, live: LiveView | None = None
                  ) -> MetricsServer:
    """Start serving /metrics on daemon.metrics_listen in a background thread."""
    daemon = config.daemon
    host, port = parse_listen(daemon.metrics_listen)
    tls: ssl.SSLContext | None = None
    if daemon.metrics_tls_cert_file is not None and daemon.metrics_tls_key_file is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            tls.load_cert_chain(os.fspath(daemon.metrics_tls_cert_file),
                                os.fspath(daemon.metrics_tls_key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the metrics TLS certificate {daemon.metrics_tls_cert_file} / key "
                f"{daemon.metrics_tls_key_file}: {exc.__class__.__name__}",
                "check daemon.metrics_tls_cert_file and metrics_tls_key_file are a matching "
                "PEM pair readable by the drbackup user") from None
    expected: bytes | None = None
    if daemon.metrics_basic_auth_user and daemon.metrics_basic_auth_password_file:
        password = _read_secret(daemon.metrics_basic_auth_password_file,
                                "metrics basic-auth password file")
        if not password:
            raise ConfigError(
                f"the metrics basic-auth password file {daemon.metrics_basic_auth_password_file}"
                " is empty", "write the password Prometheus sends into it")
        expected = _digest(daemon.metrics_basic_auth_user, password)
    collector = StateCollector(config, state, live)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class _Bound(_Server):
        address_family = family

    try:
        server = _Bound((host, port), _Handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {daemon.metrics_listen}: {exc.strerror}",
                          "pick a free port in daemon.metrics_listen (0 = any free port) or "
                          "stop what listens there") from None
    server.collector = collector
    server.process = _process_registry()
    server.expected_auth = expected
    server.tls = tls
    running = MetricsServer(server, collector)
    log.info("serving metrics on %s", running.url, extra={"event": "metrics_listening"})
    return running
