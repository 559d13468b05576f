"""The HTML city report, pure: both languages complete, nothing external, hostile text escaped,
worst first without JS, the CSP hashes those of the page's own style and script, the charts'
"current figures only" note, --drill-limit and an unwritable target refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from drbackup.cli.commands.fleet import _drill_limit, write_html
from drbackup.cli.fleet_html import RANK, render_html
from drbackup.cli.fleet_html_text import LANGUAGES, TEXT
from drbackup.errors import UsageError
from drbackup.fleet.city import FleetReport, SummaryFile, city_report
from drbackup.fleet.inventory import ExpectedAgency
from drbackup.fleet.summary import AgencySummary, SourceStatus
from drbackup.fleet.trust import Keyring
from drbackup.verify.evidence import EvidenceKey, public_pem

NOW = 1_800_000_000.0
EVIL = "<script>alert('x')</script>"


def _report(tmp_path: Path) -> FleetReport:
    key = EvidenceKey.load_or_create(tmp_path / "a")
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "a.pem").write_bytes(public_pem(key.public_key))

    def file(agency: str, findings: list[str], version: str = "0.1.0") -> SummaryFile:
        summary = AgencySummary(
            host="host-a", agency=agency, sequence=5, published_at=NOW - 60,
            valid_seconds=3600, drbackup_version=version,
            verdict="failing" if findings else "good", level_met=1, level_required=None,
            sources=[SourceStatus("docs", "directory", NOW - 600, 600.0, 3600.0, NOW - 7200,
                                  30.0, 3600.0, 1, findings)], findings=findings)
        body = json.dumps(key.sign(summary.to_report())).encode()
        return SummaryFile("city", f"{agency}/fleet/host-a.json", agency, "host-a", body)

    files = [file("planning", [], version=EVIL[:40]), file("water", ["rpo-breached"])]
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
    assert TEXT[lang]["chart_note"].format(limit="8.0d") in page
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
