"""Issue 20 item 4, the city dashboard: three real daemons (three hosts, real restic, local
stores) are scraped by two real per-host Prometheus servers (one scrapes two daemons, as in a
network zone); a real city Prometheus runs the example config config/prometheus/city-federation.yml
(its federation job, match[] selectors, honor_labels and rule file; only targets and intervals
are replaced) and federates both. After one agency backs up nothing (a missing path), one loses
its source so its RPO is breached, and one host's daemon is stopped, every PromQL query of every
panel of config/grafana/drbackup-city-dashboard.json runs against the city Prometheus and returns
exactly those agencies and verdicts, worst first; an agency on two hosts shows once with two
hosts. The example config passes `promtool check config`.

The verdict rules themselves, case by case: config/prometheus/tests/drbackup-city-rules.test.yml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.daemon import DaemonProcess, runs, wait_for
from tests.support.prometheus import PrometheusServer
from tests.support.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
FEDERATION = PROMETHEUS_DIR / "city-federation.yml"
DASHBOARD = ROOT / "config" / "grafana" / "drbackup-city-dashboard.json"
PASSWORD = "one-password-for-every-test-repository"
# host -> agency -> how its one source behaves
HOSTS: dict[str, dict[str, str]] = {
    "host-a": {"water": "good", "transit": "missing", "health": "good"},
    "host-b": {"health": "good", "planning": "loses-source"},
    "host-c": {"archives": "good"},
}
GOOD, AT_RISK, FAILING, NOT_REPORTING = 0, 1, 2, 3
EXPECTED = {"water": GOOD, "health": GOOD, "transit": FAILING, "planning": FAILING,
            "archives": NOT_REPORTING}
# Panels whose figures this world has not measured (no drill, no replica, no offline copy).
UNMEASURED = {"Agencies × verdict, worst first [E]", "Agencies × verdict, worst first [F]",
              "Agencies × verdict, worst first [H]", "Agencies × verdict, worst first [I]"}


def dashboard_queries() -> dict[str, str]:
    """'panel title [refId]' -> PromQL, with $host matching every host."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$host", ".*")
            assert "$" not in expr, f"unsubstituted variable in {panel['title']}: {expr}"
            found[f"{panel['title']} [{target['refId']}]"] = expr
    return found


def _template_repo(root: Path, restic_binary: str) -> Path:
    """One real restic repository, initialised once and copied per agency."""
    template = root / "template-repo"
    password = root / "template.password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    env = {"RESTIC_PASSWORD_FILE": str(password), "PATH": os.environ["PATH"],
           "RESTIC_CACHE_DIR": str(root / "template-cache")}
    subprocess.run([restic_binary, "init", "-q", "-r", str(template)], env=env, check=True,
                   capture_output=True, timeout=60)
    return template


def _host(root: Path, name: str, restic_binary: str, template: Path) -> Workspace:
    ws = Workspace(root / name)
    ws.config["daemon"].update({"restic": restic_binary, "hostname": name})
    for agency, behaviour in HOSTS[name].items():
        shutil.copytree(template, ws.state_dir / "repos" / agency)
        data = root / "data" / name / agency
        if behaviour != "missing":
            data.mkdir(parents=True)
            for index in range(3):
                (data / f"record-{index}.txt").write_text(f"{agency} {index}\n" * 20)
        ws.add_agency(agency, password=PASSWORD,
                      rpo="3s" if behaviour == "loses-source" else "1h")
        ws.add_directory_source(agency, "files", [data], watch=False)
    return ws


def test_city_dashboard_over_federated_daemons(tmp_path: Path, restic_binary: str,
                                               prometheus: PrometheusServer) -> None:
    check = subprocess.run(["promtool", "check", "config", str(FEDERATION)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    template = _template_repo(tmp_path, restic_binary)
    workspaces = {name: _host(tmp_path, name, restic_binary, template) for name in HOSTS}
    daemons = {name: DaemonProcess(ws) for name, ws in workspaces.items()}
    zone = PrometheusServer(tmp_path / "prometheus-zone")  # scrapes host-a and host-b
    lone = PrometheusServer(tmp_path / "prometheus-host-c")
    city = prometheus
    try:
        urls = {}
        for name, daemon in daemons.items():
            daemon.wait_ready()
            urls[name] = daemon.metrics_url().split("//", 1)[1].split("/", 1)[0]
        fast = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        # One Prometheus for two daemons labels each with its host; the other gets its host
        # label from the city's target.
        zone.start_config({"global": fast, "scrape_configs": [{
            "job_name": "drbackup", "static_configs": [
                {"targets": [urls["host-a"]], "labels": {"host": "host-a"}},
                {"targets": [urls["host-b"]], "labels": {"host": "host-b"}}]}]})
        lone.start([urls["host-c"]], [])
        example = yaml.safe_load(FEDERATION.read_text())
        example["global"].update(fast)
        example["rule_files"] = [str(PROMETHEUS_DIR / f) for f in example["rule_files"]]
        federate = example["scrape_configs"][0]
        federate.update({"scrape_interval": "1s", "scrape_timeout": "1s", "static_configs": [
            {"targets": [zone.url.split("//", 1)[1]], "labels": {"host": "zone-1"}},
            {"targets": [lone.url.split("//", 1)[1]], "labels": {"host": "host-c"}}]})
        city.start_config(example)

        # planning backs up once, then its source disappears: the RPO (3 s) runs out.
        wait_for(lambda: any(r["result"] == "success" for r in runs(workspaces["host-b"])
                             if r["agency"] == "planning"), 60, "planning's first backup")
        (tmp_path / "data" / "host-b" / "planning").rename(tmp_path / "planning-gone")
        verdict = dashboard_queries()["Agencies × verdict, worst first [A]"]

        def verdicts() -> dict[str, float]:
            return {k[0]: v for k, v in _by(city.query(verdict), "agency").items()}
        before_stop = {**EXPECTED, "archives": GOOD}
        wait_for(lambda: verdicts() == before_stop, 90,
                 f"the city verdicts before host-c stops ({before_stop})")
        assert daemons["host-c"].stop() == 0
        wait_for(lambda: verdicts() == EXPECTED, 60, f"the city verdicts {EXPECTED}")

        queries = dashboard_queries()
        results = {title: city.query(expr) for title, expr in queries.items()}
        assert sorted(t for t, r in results.items() if not r) == sorted(UNMEASURED)
        check_verdict_table(results)
        check_problems(results)
        check_overview(results)
    finally:
        for name, daemon in daemons.items():
            if daemon.process.poll() is None:
                assert daemon.stop() == 0, name
        zone.stop()
        lone.stop()


def _by(result: list[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1]) for r in result}


def check_verdict_table(results: dict[str, list[dict[str, Any]]]) -> None:
    table = "Agencies × verdict, worst first"
    rows = results[f"{table} [A]"]
    # Worst first: the query's own order (sort_desc), as the table shows it.
    assert [float(r["value"][1]) for r in rows] == sorted(EXPECTED.values(), reverse=True)
    assert {r["metric"]["agency"]: float(r["value"][1]) for r in rows} == EXPECTED
    assert _by(results[f"{table} [B]"], "agency") == {
        ("water",): 1, ("transit",): 1, ("health",): 2, ("planning",): 1, ("archives",): 1}
    problems = _by(results[f"{table} [C]"], "agency")
    assert set(problems) == {("transit",), ("planning",), ("archives",)}
    headroom = _by(results[f"{table} [D]"], "agency")
    assert set(headroom) == {("water",), ("health",), ("planning",)}  # transit: never backed up
    assert headroom[("planning",)] < 0 < min(headroom[("water",)], headroom[("health",)])
    assert set(_by(results[f"{table} [G]"], "agency")) == {
        ("water",), ("transit",), ("health",), ("planning",)}
    assert all(v == 0 for v in _by(results[f"{table} [J]"], "agency").values())


def check_problems(results: dict[str, list[dict[str, Any]]]) -> None:
    problems = _by(results["Problems by agency and host, worst first [A]"],
                   "host", "agency", "problem")
    assert problems[("host-a", "transit", "no_good_backup")] == FAILING
    assert problems[("host-b", "planning", "rpo_breached")] == FAILING
    assert problems[("host-c", "archives", "not_reporting")] == NOT_REPORTING
    assert {k[1] for k in problems} == {"transit", "planning", "archives"}
    # planning's failed runs since may add backups_failing (at risk); nothing else appears.
    assert set(problems) - {("host-b", "planning", "backups_failing")} == {
        ("host-a", "transit", "no_good_backup"), ("host-b", "planning", "rpo_breached"),
        ("host-c", "archives", "not_reporting")}
    hosts = results["Agency × host verdict, worst first [A]"]
    assert [float(r["value"][1]) for r in hosts] == sorted(
        (float(r["value"][1]) for r in hosts), reverse=True)
    assert _by(hosts, "host", "agency") == {
        ("host-a", "water"): GOOD, ("host-a", "transit"): FAILING, ("host-a", "health"): GOOD,
        ("host-b", "health"): GOOD, ("host-b", "planning"): FAILING,
        ("host-c", "archives"): NOT_REPORTING}


def check_overview(results: dict[str, list[dict[str, Any]]]) -> None:
    def scalar(title: str) -> float:
        (row,) = results[title]
        return float(row["value"][1])
    assert scalar("Agencies good [A]") == 2
    assert scalar("Agencies at risk [A]") == 0
    assert scalar("Agencies failing [A]") == 2
    assert scalar("Agencies not reporting [A]") == 1
    assert (scalar("Host Prometheus servers up [A]"),
            scalar("Host Prometheus servers up [B]")) == (2, 2)
    assert (scalar("Daemons up [A]"), scalar("Daemons up [B]")) == (2, 3)
    daemons = _by(results["Host Prometheus servers and daemons [B]"], "host")
    assert daemons == {("host-a",): 1, ("host-b",): 1, ("host-c",): 0}
    history = [scalar(f"Agencies by verdict [{ref}]") for ref in "ABCD"]
    assert history == [2, 0, 2, 1]
