"""Metric samples as the collector builds them, rendered in Prometheus text format or handed to
prometheus_client as Metric families."""

from __future__ import annotations

import functools

from prometheus_client.core import Metric

from drbackup.metrics.definitions import DURATION_BUCKETS, METRICS

_BUCKET_LABELS = (*(repr(b) for b in DURATION_BUCKETS), "+Inf")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@functools.lru_cache(maxsize=1 << 16)
def _label_text(names: tuple[str, ...], values: tuple[str, ...],
                extra: tuple[str, str] | None) -> str:
    """'{a="x",b="y"}' (cached: the label sets of a fleet barely change between scrapes)."""
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _format(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Samples:
    """The values of one scrape, by family, rendered straight to the text format (much
    faster than prometheus_client's generic encoder for thousands of series)."""

    def __init__(self) -> None:
        # family -> [(sample suffix, label values, extra (name, value) label or None, value)]
        self.families: dict[str, list[tuple[str, tuple[str, ...], tuple[str, str] | None,
                                            float]]] = {}

    def add(self, name: str, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            self.families.setdefault(name, []).append(("", labels, None, float(value)))

    def histogram(self, name: str, labels: tuple[str, ...], buckets: list[int],
                  total: float) -> None:
        rows = self.families.setdefault(name, [])
        cumulative = 0
        for bound, count in zip(_BUCKET_LABELS, buckets, strict=True):
            cumulative += count
            rows.append(("_bucket", labels, ("le", bound), float(cumulative)))
        rows.append(("_sum", labels, None, total))
        rows.append(("_count", labels, None, float(cumulative)))

    def value(self, name: str, *labels: str) -> float | None:
        """One plain sample's value (tests, benchmarks)."""
        for suffix, values, extra, value in self.families.get(name, []):
            if not suffix and extra is None and values == labels:
                return value
        return None

    def render(self) -> str:
        lines: list[str] = []
        for name, rows in self.families.items():
            spec = METRICS[name]
            help_text = spec.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {spec.type}")
            names = spec.labels
            for suffix, values, extra, value in rows:
                lines.append(f"{name}{suffix}{_label_text(names, values, extra)} "
                             f"{_format(value)}")
        return "\n".join(lines) + "\n" if lines else ""

    def to_metrics(self) -> list[Metric]:
        metrics = []
        for name, rows in self.families.items():
            spec = METRICS[name]
            metric = Metric(name.removesuffix("_total") if spec.type == "counter" else name,
                            spec.help, spec.type)
            for suffix, values, extra, value in rows:
                labels = dict(zip(spec.labels, values, strict=True))
                if extra is not None:
                    labels[extra[0]] = extra[1]
                metric.add_sample(name + suffix, labels, value)
            metrics.append(metric)
        return metrics
