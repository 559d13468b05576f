"""Helpers for metrics tests: scraping an endpoint, parsing the exposition, and the PromQL
expressions of the Grafana dashboard with its variables substituted."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from tests.support.prometheus import PrometheusServer

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "drbackup-rules.yml"
DASHBOARD = ROOT / "config" / "grafana" / "drbackup-dashboard.json"
T = TypeVar("T")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


def parse(exposition: str) -> dict[str, float]:
    """'name{labels sorted by name}' -> value."""
    out = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title [refId], expr) for every target of every panel; $agency matches all,
    $__rate_interval is 1m (the tests scrape every second)."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$agency", ".*")
                    .replace("$__rate_interval", "1m").replace("$__range", "1h"))
            assert "$" not in expr, f"unsubstituted variable in {panel['title']}: {expr}"
            found.append((f"{panel['title']} [{target['refId']}]", expr))
    return found


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.5) -> T:
    """Poll until predicate() is truthy or the (generous) timeout passes; returns the last
    value so the caller asserts on it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def panels_without_data(prometheus: PrometheusServer) -> list[str]:
    """Dashboard panel queries that return nothing from Prometheus (each polled up to 10 s)."""
    empty = []
    for title, expr in dashboard_expressions():
        def ask(query: str = expr) -> list[dict[str, Any]]:
            return prometheus.query(query)
        if not wait_for(ask, timeout=10):
            empty.append(f"{title}: {expr}")
    return empty
