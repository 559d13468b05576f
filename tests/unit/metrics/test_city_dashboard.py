"""The city dashboard (config/grafana/drbackup-city-dashboard.json) is well-formed and reads only
what exists: the data source is a variable every panel uses, ids are unique, and every series a
query names is a drbackup metric (drbackup/metrics/definitions.py), `up`, or a series the city
recording rules (config/prometheus/drbackup-city-rules.yml) record."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from drbackup.metrics.definitions import METRICS

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "config" / "grafana" / "drbackup-city-dashboard.json"
RULES = ROOT / "config" / "prometheus" / "drbackup-city-rules.yml"
# Names in PromQL: a series or function name is a word not followed by '=', '~' or '"'.
_NAME = re.compile(r"(?<![\w:\"])([a-zA-Z_:][\w:]*)(?=\s*[({\[]|\s*[-+*/)<>=!]|\s*$)")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "count", "sum", "min", "max", "avg", "sort_desc", "time",
                "vector", "up"}


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def test_datasource_variable_and_unique_ids() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "drbackup-city"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["host"]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_queries_name_only_exported_or_recorded_series() -> None:
    known = set(METRICS) | _recorded() | PROMQL_WORDS
    assert {"drbackup:agency_problem", "drbackup:agency_host_verdict",
            "drbackup:agency_verdict"} <= _recorded()
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r'"[^"]*"', '""', target["expr"])  # label values are not names
            names = set(_NAME.findall(expr)) - {"host", "agency", "source", "kind", "job"}
            assert names <= known, (panel["title"], names - known)


def test_the_main_table_is_sorted_worst_first() -> None:
    table = next(p for p in _dashboard()["panels"]
                 if p["title"] == "Agencies × verdict, worst first")
    assert table["targets"][0]["expr"].startswith("sort_desc(")
    sort = [t for t in table["transformations"] if t["id"] == "sortBy"]
    assert sort == [{"id": "sortBy", "options": {"sort": [{"field": "Verdict", "desc": True}]}}]
    mapping = table["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["options"]
    assert {k: v["text"] for k, v in mapping.items()} == {
        "0": "good", "1": "at risk", "2": "failing", "3": "not reporting"}


def test_rule_files_of_the_example_config_exist() -> None:
    example = yaml.safe_load((ROOT / "config" / "prometheus" / "city-federation.yml")
                             .read_text())
    assert [ROOT / "config" / "prometheus" / f for f in example["rule_files"]] == [RULES]
    federate = example["scrape_configs"][0]
    assert federate["metrics_path"] == "/federate"
    assert federate["honor_labels"] is True
    assert '{__name__=~"drbackup_.*"}' in federate["params"]["match[]"]
    assert all("host" in group["labels"] for group in federate["static_configs"])


def test_city_rules_read_only_exported_metrics() -> None:
    names = set(re.findall(r"\bdrbackup_[a-z0-9_]*[a-z0-9]\b", RULES.read_text()))
    assert names and sorted(names - set(METRICS)) == []
