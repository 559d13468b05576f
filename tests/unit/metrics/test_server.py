"""The /metrics endpoint: ephemeral port, basic auth (hashed, constant-time compare), TLS, and
one-line errors for bad settings."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drbackup.config.models import Config
from drbackup.errors import ConfigError
from drbackup.metrics import parse_listen, serve_metrics
from drbackup.metrics.server import MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT
from drbackup.state import StateDB


def make_config(tmp_path: Path, **daemon: Any) -> Config:
    password = tmp_path / "agency.pw"
    password.write_text("x\n")
    return Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache"),
                   "metrics_listen": "127.0.0.1:0", **daemon},
        "agencies": [{"id": "planning", "password_file": str(password)}],
    })


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state" / "state.db")
    yield db
    db.close()


def get(url: str, *, auth: tuple[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)  # noqa: S310 - our own loopback endpoint
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serves_metrics_on_an_ephemeral_port(tmp_path: Path, state: StateDB) -> None:
    server = serve_metrics(make_config(tmp_path), state)
    try:
        assert server.port != 0
        status, body = get(server.url)
        assert status == 200
        assert b'drbackup_build_info{version="' in body
        assert b'drbackup_rpo_target_seconds{agency="planning"} 86400.0' in body
        assert b"process_resident_memory_bytes" in body
        assert get(f"http://{server.address}/nothing")[0] == 404
    finally:
        server.stop()


def test_basic_auth(tmp_path: Path, state: StateDB) -> None:
    secret = tmp_path / "metrics.pw"
    secret.write_text("s3cret-for-prometheus\n")
    secret.chmod(0o600)
    config = make_config(tmp_path, metrics_basic_auth_user="prometheus",
                         metrics_basic_auth_password_file=str(secret))
    server = serve_metrics(config, state)
    try:
        assert get(server.url)[0] == 401
        assert get(server.url, auth=("prometheus", "wrong"))[0] == 401
        assert get(server.url, auth=("other", "s3cret-for-prometheus"))[0] == 401
        status, body = get(server.url, auth=("prometheus", "s3cret-for-prometheus"))
        assert status == 200
        assert b"s3cret" not in body
    finally:
        server.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "metrics.crt", tmp_path / "metrics.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls(tmp_path: Path, state: StateDB) -> None:
    cert, key = _self_signed(tmp_path)
    config = make_config(tmp_path, metrics_tls_cert_file=str(cert),
                         metrics_tls_key_file=str(key))
    server = serve_metrics(config, state)
    try:
        assert server.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        status, body = get(server.url, context=context)
        assert status == 200
        assert b"drbackup_build_info" in body
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is refused
            urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5)
    finally:
        server.stop()


def test_bad_settings_are_one_line_config_errors(tmp_path: Path, state: StateDB) -> None:
    for bad in ("9917", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match="metrics_listen"):
            parse_listen(bad)
    assert parse_listen("[::1]:9917") == ("::1", 9917)
    first = serve_metrics(make_config(tmp_path), state)
    try:
        with pytest.raises(ConfigError, match="cannot serve metrics"):
            serve_metrics(make_config(tmp_path, metrics_listen=first.address), state)
    finally:
        first.stop()
    with pytest.raises(ValueError, match="go together"):
        make_config(tmp_path, metrics_basic_auth_user="prometheus")
    cert, _ = _self_signed(tmp_path)
    broken = make_config(tmp_path, metrics_tls_cert_file=str(cert),
                         metrics_tls_key_file=str(cert))
    with pytest.raises(ConfigError, match="TLS"):
        serve_metrics(broken, state)


def test_config_reload_changes_the_exported_agencies(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    server = serve_metrics(config, state)
    try:
        assert b'agency="planning"' in get(server.url)[1]
        data = config.model_dump()
        data["agencies"][0]["id"] = "housing"
        server.update_config(Config.model_validate(data))
        body = get(server.url)[1]
        assert b'agency="housing"' in body
        assert b'agency="planning"' not in body
    finally:
        server.stop()


def _scrape_from(server_port: int, source: str) -> bytes:
    """One plain HTTP/1.0 scrape over a socket bound to `source` (another loopback address)."""
    with socket.create_connection(("127.0.0.1", server_port), timeout=10,
                                  source_address=(source, 0)) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_silent_clients_cannot_make_the_daemon_hold_threads(tmp_path: Path,
                                                            state: StateDB) -> None:
    """#14 hole 6: a client that opens connections and sends nothing used to get one thread
    each (~880 held). Now one client holds at most MAX_CONNECTIONS_PER_CLIENT, everyone at most
    MAX_CONNECTIONS, the rest are closed at once, and another scraper still gets its answer."""
    server = serve_metrics(make_config(tmp_path), state)
    silent: list[socket.socket] = []
    try:
        before = threading.active_count()
        for _ in range(200):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # let the accept loop see every connection
            time.sleep(0.2)
            refused = sum(1 for s in silent if _closed_by_peer(s))
            if refused >= 200 - MAX_CONNECTIONS_PER_CLIENT:
                break
        assert refused == 200 - MAX_CONNECTIONS_PER_CLIENT
        assert threading.active_count() - before <= MAX_CONNECTIONS_PER_CLIENT
        # Prometheus, from another address, is still served while the flood holds its slots.
        answer = _scrape_from(server.port, "127.0.0.2")
        assert answer.startswith(b"HTTP/1.0 200") and b"drbackup_build_info" in answer
        # A flood from many addresses is bounded too.
        for n in range(3, 3 + MAX_CONNECTIONS):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                                   source_address=(f"127.0.0.{n}", 0)))
        time.sleep(1)
        assert threading.active_count() - before <= MAX_CONNECTIONS
    finally:
        for sock in silent:
            sock.close()
        server.stop()


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.setblocking(True)
