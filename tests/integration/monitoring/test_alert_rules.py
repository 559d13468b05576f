"""The Prometheus rule file passes the real promtool (check + unit tests with a firing and a
not-firing case for every alert), carries the agreed alerts and annotations, links runbooks
that exist, and the generated Grafana alert rules have not drifted from it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import gen_grafana_alerts

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "config" / "prometheus" / "drbackup-rules.yml"
TESTS_DIR = ROOT / "config" / "prometheus" / "tests"
ALERTS = ["DrBackupRPOBreached", "DrBackupBackupsFailing", "DrBackupVerifyFailed",
          "DrBackupVerifyOverdue", "DrBackupRTOEstimateOverTarget", "DrBackupReplicationLagHigh",
          "DrBackupStoreDown", "DrBackupWatcherOverflow", "DrBackupDaemonAbsent",
          "DrBackupDiskFilling", "DrBackupRansomwareSuspected", "DrBackupOfflineCopyTooOld"]
RUNBOOK_PREFIX = "https://drbackup.example.gov/runbooks/"
# Alerts that start an incident procedure link it instead of runbooks/<lang>/alerts/<name>.md.
RUNBOOKS = {"DrBackupRansomwareSuspected": "en/ransomware-suspected.md"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed (Debian package 'prometheus'): run 'make setup'")
    return found


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = sorted(TESTS_DIR.glob("*.yml"))
    assert files
    result = subprocess.run([promtool, "test", "rules", *map(str, files)], capture_output=True,
                            text=True, timeout=120, cwd=TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS_DIR.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert sorted(set(ALERTS) - fires) == []
    assert sorted(set(ALERTS) - quiet) == []


def test_alert_names_labels_and_annotations() -> None:
    rules = _rules()
    assert [rule["alert"] for rule in rules] == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}, rule["alert"]
        assert annotations["runbook_url"] == RUNBOOK_PREFIX + RUNBOOKS.get(
            rule["alert"], f"en/alerts/{rule['alert']}.md")


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_runbooks_exist_for_every_alert(language: str) -> None:
    missing = []
    for rule in _rules():
        url = rule["annotations"]["runbook_url"].replace("/en/", f"/{language}/")
        path = ROOT / "runbooks" / url.removeprefix(RUNBOOK_PREFIX)
        if not path.is_file():
            missing.append(str(path.relative_to(ROOT)))
    if missing:
        # The runbooks are written on another branch; only their absence may skip this test.
        pytest.skip(f"runbook files not in this tree yet: {', '.join(missing)}")


def test_grafana_alert_rules_match_the_prometheus_rules() -> None:
    committed = gen_grafana_alerts.OUTPUT.read_text()
    assert committed == gen_grafana_alerts.generate(), (
        "config/grafana/alerting/drbackup-alerts.yaml drifted from the Prometheus rules: "
        "run python -m scripts.gen_grafana_alerts")
    grafana = yaml.safe_load(committed)
    by_title = {rule["title"]: rule for group in grafana["groups"] for rule in group["rules"]}
    assert list(by_title) == ALERTS
    for rule in _rules():
        copy = by_title[rule["alert"]]
        assert copy["data"][0]["model"]["expr"] == " ".join(rule["expr"].split())
        assert copy["for"] == rule.get("for", "0s")
        assert copy["labels"] == rule["labels"]
        assert copy["annotations"]["runbook_url"] == rule["annotations"]["runbook_url"]
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", copy["uid"])
        assert copy["condition"] == "B"
