"""The HTML city report, pure: both languages complete, nothing external, hostile text escaped,
worst first without JS, the CSP hashes those of the page's own style and script, the charts'
note, history charts for rows with history (bars without), each agency's own drill-age limit,
--drill-limit and an unwritable target refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from pathlib import Path

import pytest

from drbackup.cli.commands.fleet import _drill_limit, write_html
from drbackup.cli.fleet_html import RANK, render_html
from drbackup.cli.fleet_html_text import LANGUAGES, TEXT
from drbackup.errors import UsageError
from drbackup.fleet.city import FleetReport, SummaryFile, city_report
from drbackup.fleet.history import SourceHistory
from drbackup.fleet.inventory import ExpectedAgency
from drbackup.fleet.summary import AgencySummary, SourceStatus
from drbackup.fleet.trust import Keyring
from drbackup.verify.evidence import EvidenceKey, public_pem

NOW = 1_800_000_000.0
EVIL = "<script>alert('x')</script>"
DAY = 86400.0
HISTORY = SourceHistory(30 * DAY,
                        [[NOW - 60 - d * DAY, 1800.0 * (d + 1)] for d in range(3, -1, -1)],
                        [[NOW - 5 * DAY, "ok", 30.0], [NOW - 3 * DAY, "failed", None],
                         [NOW - 1 * DAY, "suspect", 7200.0]])


def _report(tmp_path: Path) -> FleetReport:
    key = EvidenceKey.load_or_create(tmp_path / "a")
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "a.pem").write_bytes(public_pem(key.public_key))

    def file(agency: str, findings: list[str], version: str = "0.1.0",
             history: SourceHistory | None = None, limit: float | None = None) -> SummaryFile:
        summary = AgencySummary(
            host="host-a", agency=agency, sequence=5, published_at=NOW - 60,
            valid_seconds=3600, drbackup_version=version,
            verdict="failing" if findings else "good", level_met=1, level_required=None,
            sources=[SourceStatus("docs", "directory", NOW - 600, 600.0, 3600.0, NOW - 7200,
                                  30.0, 3600.0, 1, findings, history)], findings=findings,
            verify_max_age_seconds=limit)
        body = json.dumps(key.sign(summary.to_report())).encode()
        return SummaryFile("city", f"{agency}/fleet/host-a.json", agency, "host-a", body)

    files = [file("planning", [], version=EVIL[:40], limit=2 * 86400.0),
             file("water", ["rpo-breached"], history=HISTORY, limit=3 * 86400.0)]
    return city_report(files, Keyring.load(ring), now=NOW, stores=["city"],
                       expected=[ExpectedAgency("harbour", None, EVIL),
                                 ExpectedAgency("planning", None, None)])


def test_both_languages_have_every_word() -> None:
    assert set(LANGUAGES) == set(TEXT)
    keys = set(TEXT["en"])
    for lang in LANGUAGES:
        assert set(TEXT[lang]) == keys, lang
        assert all(value.strip() for value in TEXT[lang].values()), lang
    assert set(RANK) <= keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_is_self_contained_escaped_and_worst_first(tmp_path: Path, lang: str) -> None:
    page = render_html(_report(tmp_path), lang=lang)
    # Nothing from elsewhere: no src/href but the empty data: icon, no url(), no @import,
    # no address but the SVG namespace.
    assert re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", page) == ["data:,"]
    assert "url(" not in page and "@import" not in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    # The hostile name and version only as text.
    assert EVIL not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1
    order = re.findall(r'<tbody class="[^"]+" data-agency="([^"]+)"', page)
    assert order == ["harbour", "water", "planning"]  # unprotected, not meeting, meeting
    assert f'<html lang="{lang}">' in page and TEXT[lang]["title"] in page
    assert escape(TEXT[lang]["chart_note"].format(limit="8.0d")) in page
    assert "@page{size:A4" in page and "@media print" in page


def test_the_csp_allows_exactly_the_pages_own_style_and_script(tmp_path: Path) -> None:
    page = render_html(_report(tmp_path))
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1).replace("&#x27;", "'")
    for tag in ("style", "script"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert policy.startswith("default-src 'none'")


def test_drill_limit_and_an_unwritable_target(tmp_path: Path) -> None:
    assert _drill_limit(None) == 8 * 86400
    assert _drill_limit("36h") == 36 * 3600
    for bad in ("soon", "0s"):
        with pytest.raises(UsageError):
            _drill_limit(bad)
    with pytest.raises(UsageError, match="cannot write the HTML report"):
        write_html(tmp_path / "missing" / "city.html", "<p>")
    write_html(tmp_path / "city.html", "<p>")
    assert (tmp_path / "city.html").read_text() == "<p>"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _row(page: str, agency: str) -> str:
    found = re.search(rf'<tbody[^>]* data-agency="{agency}".*?</tbody>', page, re.S)
    assert found is not None
    return found.group(0)


def test_history_charts_for_rows_with_history_bars_otherwise_own_drill_limit(
        tmp_path: Path) -> None:
    page = render_html(_report(tmp_path), lang="zh-CN", drill_limit_seconds=8 * DAY)
    water, planning = _row(page, "water"), _row(page, "planning")
    # water publishes history: one RPO bar per point, one dot per drill, coloured by code;
    # the target lines; the agency's own 3-day limit as the mark, 27/30 of the way along.
    assert re.findall(r'data-history="(\w+)" data-source="docs" data-points="(\d+)"',
                      water) == [("rpo", "4"), ("drills", "3")]
    assert water.count('class="pt rpo-pt"') == 4
    assert [c for c in re.findall(r'class="pt drill-pt drill-(\w+)"', water)] == [
        "ok", "failed", "suspect"]
    assert water.count('class="target"') == 2
    limit = re.search(r'<line class="limit" x1="([\d.]+)"', water)
    assert limit is not None and float(limit.group(1)) == pytest.approx(30 + 120 * 27 / 30, abs=0.2)
    red = re.findall(r'class="pt rpo-pt"[^>]*fill="([^"]+)"', water)
    assert red == ["#c0392b", "#c0392b", "#2e7d32", "#2e7d32"]  # 2h, 1.5h past 1h; 1h, 30m
    assert TEXT["zh-CN"]["drill_suspect"] in water
    # planning publishes none (as an older drbackup): the bars, drawn against its own 2-day
    # limit: the drill-age bar's mark at 2d of a scale of max(2h, 2d) * 1.1.
    assert "data-history" not in planning and planning.count("<rect") == 3
    marks = re.findall(r'<line x1="([\d.]+)"', planning)
    assert float(marks[2]) == pytest.approx(40 + 110 / 1.1, abs=0.2)
