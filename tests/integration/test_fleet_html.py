"""#20 item 3 acceptance: `drbackup fleet report --html` rendered in the distribution's headless
Chromium shows the same rows and verdicts as the `--json` of the same run, in en and zh-CN,
with no console error (a CSP block, a script error or a network request would print one), the
hostile text of a signed file and of the inventory shown as text and never run; sorting by
verdict both ways; A4 when printed; a screenshot of each language for review.

The world: signed summaries of three hosts written into a local store (the reader's path is the
same as for S3, jobs/fleet_report.py), one summary signed by a key outside the keyring, one
host stale, one expected agency unprotected."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from typing import Any

import pytest

from drbackup.cli.fleet_html import RANK, verdict_label
from drbackup.config.units import short_duration
from drbackup.errors import ExitCode
from drbackup.fleet.history import SourceHistory
from drbackup.fleet.summary import AgencySummary, ReplicaStatus, SourceStatus, summary_key
from drbackup.verify.evidence import EvidenceKey, public_pem
from tests.support import chromium
from tests.support.workspace import Workspace

HOSTILE_VERSION = "<script>document.title='pwned'</script>"  # 36 chars: a valid version
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\"><script>x()</script>"


def _summary(host: str, agency: str, now: float, *, sequence: int, level: int | None = 1,
             findings: list[str] | None = None, age: float = 60, rpo: float = 600,
             version: str = "0.1.0", history: bool = False) -> AgencySummary:
    verdict = "failing" if findings and findings != ["never-drilled"] else (
        "unknown" if level is None else "good")
    return AgencySummary(
        host=host, agency=agency, sequence=sequence, published_at=now - age,
        valid_seconds=3600, drbackup_version=version, verdict=verdict, level_met=level,
        level_required=1, sources=[SourceStatus(
            "docs", "directory", now - rpo, rpo, 3600.0,
            None if level is None else now - 7200, None if level is None else 40.0, 14400.0,
            level, findings or [], _history(now, rpo) if history else None)],
        replicas=[ReplicaStatus("dr", 120.0)], findings=findings or [],
        verify_max_age_seconds=3 * 86400.0 if history else None)


def _history(now: float, rpo: float) -> SourceHistory:
    """A month of history: the worst RPO of each day (one day past the target), and drills."""
    days = [[float(round(now - d * 86400)), 4000.0 if d == 12 else rpo]
            for d in range(29, -1, -1)]
    drills: list[list[object]] = [[float(round(now - d * 86400)), code, rto]
                                  for d, code, rto in ((20, "ok", 35.0), (9, "suspect", 40.0),
                                                       (2, "failed", None))]
    return SourceHistory(30 * 86400.0, days, drills)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The office's config (a local store, no agency), keyring and inventory; and the report
    rendered in both languages, JSON and HTML from the same run."""
    root = tmp_path_factory.mktemp("fleet-html")
    store = root / "repos"
    now = time.time()
    keys = {n: EvidenceKey.load_or_create(root / "keys" / n)
            for n in ("host-a", "host-b", "host-c", "rogue")}
    files = [
        (keys["host-a"], _summary("host-a", "planning", now, sequence=50,
                                  version=HOSTILE_VERSION, history=True)),
        (keys["host-a"], _summary("host-a", "water", now, sequence=50)),
        (keys["host-a"], _summary("host-a", "parks", now, sequence=50, level=None,
                                  findings=["never-drilled"])),
        (keys["host-b"], _summary("host-b", "water", now, sequence=70,
                                  findings=["drill-failed"], rpo=7200, history=True)),
        (keys["host-b"], _summary("host-b", "transit", now, sequence=70)),
        (keys["host-c"], _summary("host-c", "schools", now, sequence=30, age=5000)),
        (keys["rogue"], _summary("host-b", "museum", now, sequence=99)),
    ]
    for key, summary in files:
        path = store / summary_key(summary.agency, summary.host)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(key.sign(summary.to_report())))
    ring = root / "keyring"
    ring.mkdir()
    for name in ("host-a", "host-b", "host-c"):
        (ring / f"{name}.pem").write_bytes(public_pem(keys[name].public_key))
    inventory = root / "city.toml"
    inventory.write_text('[agencies.planning]\nname = "规划局"\n\n[agencies.harbour]\n'
                         f"name = {json.dumps(HOSTILE_NAME)}\n\n[agencies.water]\n")
    office = Workspace(root / "office")
    office.config["stores"]["city"] = {"path": str(store)}
    office.write()
    out: dict[str, Any] = {"root": root}
    for lang in ("en", "zh-CN"):
        page = root / f"city-{lang}.html"
        done = office.cli("--json", "fleet", "report", "--keyring", str(ring), "--expect",
                          str(inventory), "--html", str(page), "--lang", lang)
        assert done.returncode == ExitCode.FLEET_NOT_ALL_GOOD, done.stderr
        assert "Traceback" not in done.stderr
        out[lang] = (json.loads(done.stdout), page)
    return out


class _Page(HTMLParser):
    """The table as shown: per agency group (tbody) and row, the data attributes and the text
    of each cell by its class."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[dict[str, Any]] = []
        self.tiles: dict[str, str] = {}
        self.scripts = 0
        self.title = ""
        self._cell: tuple[dict[str, Any], str] | None = None
        self._tile: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        if tag == "title" and not self.title:
            self._in_title = True
        if tag == "tbody" and "data-agency" in a:
            self.groups.append({"agency": a["data-agency"], "verdict": a["data-verdict"],
                                "rows": []})
        elif tag == "tr" and "data-host" in a and self.groups:
            self.groups[-1]["rows"].append({"host": a["data-host"],
                                            "verdict": a.get("data-host-verdict"),
                                            "trust": a.get("data-trust"), "cells": {},
                                            "charts": []})
        elif tag == "svg" and "data-history" in a and self.groups:
            # A history chart: what it says it draws, and the points it does draw.
            self.groups[-1]["rows"][-1]["charts"].append(
                {"kind": a["data-history"], "source": a["data-source"],
                 "declared": int(a["data-points"]), "drawn": 0})
        elif "pt" in a.get("class", "").split() and self.groups \
                and self.groups[-1]["rows"] and self.groups[-1]["rows"][-1]["charts"]:
            self.groups[-1]["rows"][-1]["charts"][-1]["drawn"] += 1
        elif tag == "td" and self.groups and self.groups[-1]["rows"]:
            row = self.groups[-1]["rows"][-1]
            name = a.get("class", "").split(" ")[-1] if a.get("class") else ""
            row["cells"][name] = ""
            self._cell = (row, name)
        elif tag == "div" and "data-count" in a:
            self._tile = a["data-count"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "div":
            self._tile = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._cell is not None:
            row, name = self._cell
            row["cells"][name] += data
        if self._tile is not None:
            self.tiles[self._tile] = self.tiles.get(self._tile, "") + data


def _shown(dom: str) -> _Page:
    page = _Page()
    page.feed(dom)
    return page


def _expected_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    return [(a["agency"], a["verdict"], h["host"], h["verdict"])
            for a in report["agencies"] for h in a["hosts"] or [{"host": "", "verdict": None}]]


def _shown_rows(page: _Page) -> list[tuple[str, str, str, str | None]]:
    return [(g["agency"], g["verdict"], r["host"], r["verdict"])
            for g in page.groups for r in g["rows"]]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_page_shows_the_json_rows_and_runs_clean_in_chromium(
        city: dict[str, Any], lang: str) -> None:
    report, page = city[lang]
    assert {a["agency"]: a["verdict"] for a in report["agencies"]} == {
        "harbour": "unprotected", "water": "not-meeting", "museum": "unknown",
        "parks": "unknown", "schools": "unknown", "planning": "meeting", "transit": "meeting"}
    rendered = chromium.render(page.as_uri(), city["root"] / f"chrome-{lang}")
    assert rendered.console == [], rendered.console  # no error, no CSP block, no log at all
    assert rendered.failed_requests == []
    shown = _shown(rendered.dom)
    # Rows and verdicts, in the report's order (worst first), the same as the JSON.
    assert _shown_rows(shown) == _expected_rows(report)
    hosts = {(a["agency"], h["host"]): h for a in report["agencies"] for h in a["hosts"]}
    for group, agency in zip(shown.groups, report["agencies"], strict=True):
        first = group["rows"][0]["cells"]
        assert first["v"].strip() == verdict_label(agency["verdict"], lang)
        assert first["agency"].startswith(agency["agency"])
        for row in group["rows"]:
            if not row["host"]:
                continue
            host = hosts[(group["agency"], row["host"])]
            cells = row["cells"]
            assert cells["says"] == verdict_label(host["verdict"], lang)
            assert cells["trust"] == verdict_label(host["trust"], lang)
            assert row["trust"] == host["trust"]
            assert cells["rpo"] == (f"{short_duration(host['rpo_seconds'])} / "
                                    f"{short_duration(host['rpo_target_seconds'])}")
            assert cells["rto"] == (f"{short_duration(host['rto_estimate_seconds'])} / "
                                    f"{short_duration(host['rto_target_seconds'])}")
            assert cells["drill"] == short_duration(host["last_good_drill_age_seconds"])
            assert cells["level"] == (f"{host['level_met'] or '-'} / "
                                      f"{host['level_required'] or '-'}")
            # History charts (RPO, drills) for each source with history, as many points
            # drawn as the JSON holds; none (the bars) for a row without.
            expected = [(kind, src["source"], len(src["history"][kind]))
                        for src in host["sources"] if src["history"]
                        for kind in ("rpo", "drills")]
            assert [(c["kind"], c["source"], c["drawn"]) for c in row["charts"]] == expected
            assert all(c["declared"] == c["drawn"] for c in row["charts"])
    with_history = [(a["agency"], h["host"]) for a in report["agencies"] for h in a["hosts"]
                    if any(s["history"] for s in h["sources"])]
    assert with_history == [("water", "host-b"), ("planning", "host-a")]
    assert all(h["verify_max_age_seconds"] == 3 * 86400.0 for a in report["agencies"]
               for h in a["hosts"] if (a["agency"], h["host"]) in with_history)
    museum = next(g for g in shown.groups if g["agency"] == "museum")["rows"][0]
    assert museum["trust"] == "unknown-key" and museum["cells"]["rpo"] == "- / -"
    # The summary first, its counts those of the JSON.
    summary = report["summary"]
    assert {k: int(re.match(r"\d+", v).group()) for k, v in shown.tiles.items()} == {  # type: ignore[union-attr]
        "meeting": summary["meeting"], "not-meeting": summary["not_meeting"],
        "unknown": summary["unknown"], "unprotected": summary["unprotected"]}
    assert rendered.dom.index('id="summary"') < rendered.dom.index('id="city"')
    # Hostile text shown as text, never run: one script (ours), the title untouched.
    assert shown.scripts == 1 and "pwned" not in shown.title
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in rendered.dom
    assert "&lt;img src=x" in rendered.dom and "<img" not in rendered.dom
    words = {"en": ("Meeting", "City summary"), "zh-CN": ("达标", "全市概况")}[lang]
    assert all(w in rendered.dom for w in words)
    assert 'lang="' + lang + '"' in rendered.dom


def test_sorting_by_verdict_both_ways_and_by_agency(city: dict[str, Any]) -> None:
    report, page = city["en"]
    ranks = [RANK[a["verdict"]] for a in report["agencies"]]
    assert ranks == sorted(ranks)  # without JS: already worst first
    best = _shown(chromium.render(page.as_uri() + "#sort=verdict-desc",
                                  city["root"] / "chrome-sort").dom)
    assert [RANK[g["verdict"]] for g in best.groups] == sorted(ranks, reverse=True)
    named = _shown(chromium.render(page.as_uri() + "#sort=agency",
                                   city["root"] / "chrome-sort").dom)
    assert [g["agency"] for g in named.groups] == sorted(a["agency"]
                                                         for a in report["agencies"])


def test_screenshots_and_a4_print(city: dict[str, Any]) -> None:
    for lang in ("en", "zh-CN"):
        _, page = city[lang]
        png = chromium.screenshot(page.as_uri(), city["root"] / f"fleet-report-{lang}.png",
                                  city["root"] / "chrome-shot")
        print(f"screenshot ({lang}): {png}")
    pdf = city["root"] / "fleet-report-en.pdf"
    chromium.print_pdf(city["en"][1].as_uri(), pdf, city["root"] / "chrome-pdf")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    assert boxes, "no page in the PDF"
    for width, height in boxes:  # A4 landscape, in points (297 x 210 mm)
        assert abs(float(width) - 841.9) < 2 and abs(float(height) - 595.3) < 2
    print(f"printed: {pdf} ({len(boxes)} page(s))")
