"""moto's S3 server with a request log of what it served: one JSON line per request with the
method, path, Range header, status and the number of body bytes actually sent. Benchmarks read
it to measure what a job fetched from the store (which packs, how many bytes), from the server's
side, whatever the client caches.

    python -m bench.metered_s3 PORT LOG      # serve on 127.0.0.1:PORT, append to LOG

`MeteredMotoServer` starts it as a subprocess; it is a tests.support MotoServer otherwise (same
endpoint, url, client), so a Workspace can use it as a store.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.support.servers import MotoServer

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestLog:
    """A WSGI middleware that logs every request with the bytes of its response body."""

    def __init__(self, app: WsgiApp, path: Path):
        self.app = app
        self.out = path.open("a", buffering=1)  # line-buffered: readers see whole lines
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterator[bytes]:
        status: list[str] = []

        def recording_start(code: str, headers: list[tuple[str, str]],
                            exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        sent = 0
        try:
            for chunk in self.app(environ, recording_start):
                sent += len(chunk)
                yield chunk
        finally:
            entry = {"method": environ.get("REQUEST_METHOD", ""),
                     "path": unquote(environ.get("PATH_INFO", "")),
                     "query": environ.get("QUERY_STRING", ""),
                     "range": environ.get("HTTP_RANGE", ""),
                     "status": int(status[0].split()[0]) if status else 0,
                     "bytes": sent, "time": time.time()}
            with self.lock:
                self.out.write(json.dumps(entry) + "\n")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # /bucket/key...
    range: str
    status: int
    bytes: int


def read_log(path: Path, start: int = 0) -> tuple[list[Request], int]:
    """The requests logged from byte offset `start` on, and the offset after them."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read()
    end = data.rfind(b"\n") + 1  # only whole lines
    requests = []
    for line in data[:end].splitlines():
        entry = json.loads(line)
        requests.append(Request(entry["method"], entry["path"], entry["range"], entry["status"],
                                entry["bytes"]))
    return requests, start + end


class MeteredMotoServer(MotoServer):
    """MotoServer whose requests are logged to `log_path` (see RequestLog)."""

    @property
    def log_path(self) -> Path:
        return self.workdir / f"requests-{self.port}.jsonl"

    def offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def server_argv(self) -> list[str]:
        return [sys.executable, "-m", "bench.metered_s3", str(self.port), str(self.log_path)]


def main(argv: list[str]) -> int:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    port, log = int(argv[0]), Path(argv[1])

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # the JSON log says it all

    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, RequestLog(app, log), threaded=True,
               request_handler=QuietHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
