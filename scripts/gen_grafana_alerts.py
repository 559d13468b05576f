"""Generate Grafana-managed alert rules (Grafana's file-provisioning format) from the Prometheus
rule file, so teams that alert from Grafana get exactly the alerts Alertmanager users get.

    python -m scripts.gen_grafana_alerts            # rewrite config/grafana/alerting/...
    python -m scripts.gen_grafana_alerts --check    # exit 1 when the committed file drifted

Each Prometheus alert becomes one Grafana rule: query A is the alert's PromQL (instant), and
condition B is true for every series A returns (a Prometheus alert expression is a filter: a
series is present exactly when the alert condition holds). `for`, labels and annotations are
copied; `$value` in templates becomes Grafana's `$values.A.Value`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "prometheus" / "drbackup-rules.yml"
OUTPUT = ROOT / "config" / "grafana" / "alerting" / "drbackup-alerts.yaml"
DATASOURCE_UID = "drbackup-prometheus"
FOLDER = "drbackup"
HEADER = """\
# Grafana-managed alert rules for drbackup (Grafana alerting file provisioning, apiVersion 1).
# GENERATED from config/prometheus/drbackup-rules.yml by scripts/gen_grafana_alerts.py: do not
# edit by hand; a test fails when the two drift apart. Copy to
# /etc/grafana/provisioning/alerting/. Queries use the data source with uid
# "drbackup-prometheus" (config/grafana/provisioning/datasources/drbackup.yaml).
"""
_VALUE = re.compile(r"\$value\b")


def _uid(alert: str) -> str:
    """Grafana rule uids: at most 40 characters of [a-zA-Z0-9_-]."""
    name = alert.removeprefix("DrBackup")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()
    return ("drbackup-" + re.sub(r"[^a-z0-9]+", "-", words).strip("-"))[:40]


def _template(text: str) -> str:
    return _VALUE.sub("$values.A.Value", text)


def _interval_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0
    for number, unit in re.findall(r"(\d+)([smhd])", text):
        total += int(number) * units[unit]
    return total


def grafana_rule(rule: dict[str, Any], datasource_uid: str) -> dict[str, Any]:
    expr = " ".join(str(rule["expr"]).split())
    ranges = [_interval_seconds(r) for r in re.findall(r"\[([0-9smhd]+)\]", expr)]
    return {
        "uid": _uid(rule["alert"]),
        "title": rule["alert"],
        "condition": "B",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": max([600, *ranges]), "to": 0},
                "datasourceUid": datasource_uid,
                "model": {"refId": "A", "expr": expr, "instant": True, "range": False,
                          "intervalMs": 1000, "maxDataPoints": 43200},
            },
            {
                "refId": "B",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "B", "type": "math",
                          "expression": "is_number($A) || is_nan($A) || is_inf($A)",
                          "datasource": {"type": "__expr__", "uid": "__expr__"}},
            },
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": str(rule.get("for", "0s")),
        "annotations": {key: _template(str(value))
                        for key, value in rule.get("annotations", {}).items()},
        "labels": {key: str(value) for key, value in rule.get("labels", {}).items()},
        "isPaused": False,
    }


def generate(rules_path: Path = RULES, datasource_uid: str = DATASOURCE_UID) -> str:
    source = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    groups = []
    for group in source["groups"]:
        alerts = [rule for rule in group["rules"] if "alert" in rule]
        if not alerts:
            continue
        groups.append({
            "orgId": 1,
            "name": group["name"],
            "folder": FOLDER,
            "interval": str(group.get("interval", "1m")),
            "rules": [grafana_rule(rule, datasource_uid) for rule in alerts],
        })
    body = yaml.safe_dump({"apiVersion": 1, "groups": groups}, sort_keys=False,
                          allow_unicode=True, width=1000, default_flow_style=False)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when the committed file differs")
    parser.add_argument("--datasource-uid", default=DATASOURCE_UID)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = generate(RULES, args.datasource_uid)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m scripts.gen_grafana_alerts",
                  file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
