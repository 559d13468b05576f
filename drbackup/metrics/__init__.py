"""Prometheus metrics: definitions, the state-backed collector and the /metrics endpoint."""

from drbackup.metrics.collector import StateCollector
from drbackup.metrics.definitions import METRICS, MetricDef
from drbackup.metrics.live import LiveView
from drbackup.metrics.server import MetricsServer, build_registry, parse_listen, serve_metrics

__all__ = ["METRICS", "LiveView", "MetricDef", "MetricsServer", "StateCollector",
           "build_registry", "parse_listen", "serve_metrics"]
