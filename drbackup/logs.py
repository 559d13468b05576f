"""Logging set-up: JSON lines for journald and log shippers, a short human form on a terminal.

Every record may carry the fields agency, source, job and run_id (pass them in `extra=`).
Secrets are never passed to a logger; `redact` is a last guard for text that came from outside.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

CONTEXT_FIELDS = ("agency", "source", "job", "run_id", "store", "replica", "trigger", "event")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                           if getattr(record, name, None) is not None)
        text = f"{stamp} {record.levelname.lower():7} {record.getMessage()}"
        return f"{text} [{context}]" if context else text


def setup_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    """fmt: "json", "human", or "auto" (human on a terminal, JSON otherwise)."""
    stream = sys.stderr
    if fmt == "auto":
        fmt = "human" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
