"""The Grafana dashboard and provisioning files are well-formed: the data source is a variable
that every panel uses, panels are unique, the overview sections exist, and the provisioning
files have the fields Grafana reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "config" / "grafana"


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((GRAFANA / "drbackup-dashboard.json").read_text()))


def test_datasource_is_a_variable_used_by_every_panel() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["agency"]["datasource"]["uid"] == "${datasource}"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()


def test_sections_and_unique_ids() -> None:
    dashboard = _dashboard()
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Fleet overview", "Ransomware guard", "Agency detail", "Verification",
                    "Replication and stores", "Queue and daemon"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "drbackup-overview"
    titles = {p["title"] for p in dashboard["panels"]}
    assert "Agencies: last good backup and RPO headroom" in titles


def test_provisioning_files() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "drbackup.yaml")
                               .read_text())
    assert providers["apiVersion"] == 1
    provider = providers["providers"][0]
    assert provider["type"] == "file"
    assert {"name", "orgId", "folder", "options"} <= set(provider)
    assert provider["options"]["path"]
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "drbackup.yaml")
                             .read_text())
    assert sources["datasources"][0]["uid"] == "drbackup-prometheus"
    assert sources["datasources"][0]["type"] == "prometheus"
    alerts = yaml.safe_load((GRAFANA / "alerting" / "drbackup-alerts.yaml").read_text())
    uids = {rule["data"][0]["datasourceUid"] for group in alerts["groups"]
            for rule in group["rules"]}
    assert uids == {"drbackup-prometheus"}
