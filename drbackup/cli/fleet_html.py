"""`drbackup fleet report --html FILE` (#20 item 3): the city report as one self-contained page.

Rendered from the very FleetReport object `--json` prints (fleet/city.py), nothing else read.
Self-contained: inline CSS, a few lines of inline JS (sorting) and inline SVG; no font, script,
image or style from anywhere else, so it opens offline, on an air-gapped desk, and prints to A4.
Without JS the table is already in the report's order, worst first.

Everything shown is escaped: agency ids, host names, versions, reasons and inventory names come
from files in a bucket (signed or not) and are hostile until proven otherwise; a signature says
who wrote a text, not that it is harmless."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from drbackup.cli.fleet_html_charts import history_charts
from drbackup.cli.fleet_html_text import LANGUAGES, TEXT
from drbackup.config.units import short_duration
from drbackup.fleet.city import AgencyRow, FleetReport, HostRow
from drbackup.jobs.evidence import utc_iso

# The verdicts in the report's own order (fleet/city.py _ORDER): the rank the JS sorts by.
RANK = {"unprotected": 0, "not-meeting": 1, "unknown": 2, "meeting": 3}
DEFAULT_DRILL_LIMIT = 8 * 86400.0  # agencies.verify_max_age's default

_CSS = """
*{box-sizing:border-box}
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",system-ui,
 sans-serif;margin:16px;color:#1b1b1b;font-size:13px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:15px;margin:18px 0 6px}
.sub,.meta{color:#555;font-size:12px}.meta span{margin-right:14px}
.tiles{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}
.tile{border-radius:6px;padding:8px 14px;min-width:130px;border:1px solid #ccc}
.tile b{display:block;font-size:26px}
.tile.unprotected{background:#5c0b0b;color:#fff}.tile.not-meeting{background:#fbe3e1}
.tile.unknown{background:#fff4d6}.tile.meeting{background:#e2f3e4}
.unprot{background:#5c0b0b;color:#fff;padding:8px 12px;border-radius:6px;font-weight:bold}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #d0d0d0;padding:3px 5px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
td.v{font-weight:bold;white-space:nowrap}
tbody.unprotected td.v{background:#5c0b0b;color:#fff}
tbody.not-meeting td.v{background:#f3b9b3}
tbody.unknown td.v{background:#ffe39a}
tbody.meeting td.v{background:#b9e2be}
.hv-failing{color:#a40000;font-weight:bold}.hv-good{color:#1e6b26}
.untrusted{color:#7a3d00;font-style:italic}
.why{color:#555;font-size:11px;margin:2px 0 0;padding-left:14px}
.name{color:#444;font-size:11px}
button{font:inherit;font-size:11px;margin-left:6px}
.note{color:#555;font-size:11px}
.hist{margin:0 0 2px}.hist svg{display:block}.src{font-size:9px;color:#444}
@page{size:A4 landscape;margin:10mm}
@media print{body{margin:0;font-size:8pt}button{display:none}
 tbody{break-inside:avoid}th{background:#eee!important}
 .tile,tbody td.v{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

# Sorting by verdict rank (then agency) or by agency, either way round; a #sort=verdict-desc or
# #sort=agency hash in the address opens the page sorted so (a link can carry the view).
_JS = """
(function(){
var t=document.getElementById('city');
function sort(key,dir){
var g=Array.prototype.slice.call(t.tBodies);
g.sort(function(a,b){
var n=a.dataset.agency<b.dataset.agency?-1:(a.dataset.agency>b.dataset.agency?1:0);
var x=key==='agency'?n:((a.dataset.rank-b.dataset.rank)||n);return dir*x;});
g.forEach(function(b){t.appendChild(b);});
t.dataset.sorted=key+(dir<0?'-desc':'');}
var bs=document.querySelectorAll('button[data-sort]');
Array.prototype.forEach.call(bs,function(b){b.hidden=false;
b.addEventListener('click',function(){var k=b.dataset.sort;
var d=t.dataset.sorted===k?-1:1;sort(k,d);});});
var m=/^#sort=(verdict|agency)(-desc)?$/.exec(location.hash);
if(m){sort(m[1],m[2]?-1:1);}
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only our own style and script run, by hash: were an escaping ever missed, an injected
# <script> would still not run, and no request may leave the page (not even a favicon lookup).
_CSP = (f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
        "img-src data:")


def _e(value: object) -> str:
    return escape(str(value), quote=True)



def _level(value: int | None) -> str:
    return "-" if value is None else str(value)


def _bar(y: int, label: str, measured: float | None, target: float | None,
         words: dict[str, str]) -> str:
    """One row of a chart: a bar of the measured value, the target as a mark."""
    left, width = 40, 110
    head = f'<text x="0" y="{y + 9}" font-size="9">{_e(label)}</text>'
    if measured is None or not target:
        return head + (f'<text x="{left}" y="{y + 9}" font-size="9" fill="#777">'
                       f'{_e(words["not_measured"])}</text>')
    full = max(measured, target) * 1.1
    size = max(1.0, measured / full * width)
    mark = left + target / full * width
    colour = "#c0392b" if measured > target else "#2e7d32"
    tip = f"{label}: {short_duration(measured)} / {short_duration(target)}"
    return (head + f'<rect x="{left}" y="{y + 1}" width="{size:.1f}" height="9" '
            f'fill="{colour}"><title>{_e(tip)}</title></rect>'
            f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="{y}" y2="{y + 11}" stroke="#000" '
            f'stroke-width="1.5"/>')


def _chart(row: HostRow, words: dict[str, str], drill_limit: float) -> str:
    """The row's history charts when its summary carries history, else bars of now against
    target. The drill-age limit is the agency's own when its summary carries it."""
    limit = row.verify_max_age_seconds or drill_limit
    if row.published_at is not None:
        charts = history_charts(row.sources, row.published_at, limit, words)
        if charts is not None:
            return charts
    bars = [_bar(0, words["chart_rpo"], row.rpo_seconds, row.rpo_target_seconds, words),
            _bar(13, words["chart_rto"], row.rto_estimate_seconds, row.rto_target_seconds,
                 words),
            _bar(26, words["chart_drill"], row.last_good_drill_age_seconds, limit, words)]
    return ('<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="152" height="38" '
            f'viewBox="0 0 152 38" role="img">{"".join(bars)}</svg>')


def _replicas(row: HostRow) -> str:
    parts = [f"{r['store']} ({short_duration(r['lag_seconds'])})"  # type: ignore[arg-type]
             for r in row.replicas]
    return ", ".join(parts) or "-"


def _host_cells(row: HostRow, words: dict[str, str], drill_limit: float) -> str:
    says = words.get(row.verdict, row.verdict)
    trust_class = "trust" if row.trust == "trusted" else "untrusted trust"
    version = f'<div class="name">{_e(words["version"])} {_e(row.drbackup_version)}</div>' \
        if row.drbackup_version else ""
    return (f'<td class="host">{_e(row.host)}{version}</td>'
            f'<td class="hv-{_e(row.verdict)} says">{_e(says)}</td>'
            f'<td class="{trust_class}">{_e(words.get(row.trust, row.trust))}</td>'
            f'<td class="num level">{_level(row.level_met)} / {_level(row.level_required)}</td>'
            f'<td class="num rpo">{short_duration(row.rpo_seconds)} / '
            f'{short_duration(row.rpo_target_seconds)}</td>'
            f'<td class="num rto">{short_duration(row.rto_estimate_seconds)} / '
            f'{short_duration(row.rto_target_seconds)}</td>'
            f'<td class="num drill">{short_duration(row.last_good_drill_age_seconds)}</td>'
            f'<td class="replicas">{_e(_replicas(row))}</td>'
            f'<td class="num published">{short_duration(row.age_seconds)}</td>'
            f'<td class="chart">{_chart(row, words, drill_limit)}</td>')


def _agency_cells(agency: AgencyRow, span: int, words: dict[str, str]) -> str:
    name = f'<div class="name">{_e(agency.name)}</div>' if agency.name else ""
    why = "".join(f"<li>{_e(r)}</li>" for r in agency.reasons)
    reasons = f'<ul class="why" title="{_e(words["reasons"])}">{why}</ul>' if why else ""
    rows = f' rowspan="{span}"' if span > 1 else ""
    return (f'<td class="v"{rows}>{_e(words[agency.verdict])}</td>'
            f'<td class="agency"{rows}><span class="id">{_e(agency.agency)}</span>{name}'
            f"{reasons}</td>")


def _agency_body(agency: AgencyRow, words: dict[str, str], drill_limit: float) -> str:
    head = (f'<tbody class="{_e(agency.verdict)}" data-agency="{_e(agency.agency)}" '
            f'data-verdict="{_e(agency.verdict)}" data-rank="{RANK[agency.verdict]}">')
    if not agency.hosts:
        return (f'{head}<tr data-host="">{_agency_cells(agency, 1, words)}'
                f'<td colspan="10" class="untrusted">{_e(words["no_host"])} '
                f'({_e(words["col_level"])}: - / {_level(agency.level_required)})</td>'
                "</tr></tbody>")
    rows = []
    for index, host in enumerate(agency.hosts):
        lead = _agency_cells(agency, len(agency.hosts), words) if index == 0 else ""
        rows.append(f'<tr data-host="{_e(host.host)}" data-host-verdict="{_e(host.verdict)}" '
                    f'data-trust="{_e(host.trust)}">{lead}'
                    f"{_host_cells(host, words, drill_limit)}</tr>")
    return head + "".join(rows) + "</tbody>"


def _summary(report: FleetReport, words: dict[str, str]) -> str:
    s = report.summary
    tiles = "".join(
        f'<div class="tile {key}" data-count="{key}"><b>{count}</b>{_e(words[key])}</div>'
        for key, count in (("meeting", s.meeting), ("not-meeting", s.not_meeting),
                           ("unknown", s.unknown), ("unprotected", s.unprotected)))
    line = (f'<p class="meta"><span>{s.agencies} {_e(words["agencies"])}</span>'
            f'<span>{s.hosts} {_e(words["hosts"])}</span>'
            f'<span>{len(s.stale_hosts)} {_e(words["stale_hosts"])}</span>'
            f'<span>{s.untrusted_files} {_e(words["untrusted_files"])}</span></p>')
    unprotected = ""
    if report.unprotected:
        unprotected = (f'<p class="unprot" id="unprotected">{_e(words["unprotected_first"])}: '
                       f'{_e(", ".join(report.unprotected))}</p>')
    return (f'<section id="summary"><h2>{_e(words["summary"])}</h2>'
            f'<div class="tiles">{tiles}</div>{line}{unprotected}</section>')


def _table(report: FleetReport, words: dict[str, str], drill_limit: float) -> str:
    heads = ["col_verdict", "col_agency", "col_host", "col_host_says", "col_trust", "col_level",
             "col_rpo", "col_rto", "col_drill", "col_replicas", "col_published", "col_chart"]
    cells = "".join(f"<th>{_e(words[h])}</th>" for h in heads)
    sort = (f'<button type="button" data-sort="verdict" hidden>{_e(words["sort_verdict"])}'
            f'</button><button type="button" data-sort="agency" hidden>'
            f'{_e(words["sort_agency"])}</button>')
    bodies = "".join(_agency_body(a, words, drill_limit) for a in report.agencies)
    note = words["chart_note"].format(limit=short_duration(drill_limit))
    return (f'<section id="agencies"><h2>{_e(words["table"])}{sort}</h2>'
            f'<table id="city" data-sorted="verdict"><thead><tr>{cells}</tr></thead>{bodies}'
            f'</table><p class="note" id="chart-note">{_e(note)}</p></section>')


def _small_table(section: str, title: str, heads: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<section id="{section}"><h2>{_e(title)}</h2><table><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></section>")


def _problems(report: FleetReport, words: dict[str, str]) -> str:
    stale = ""
    if report.summary.stale_hosts:
        stale = (f'<section id="stale"><h2>{_e(words["stale_list"])}</h2>'
                 f'<p>{_e(", ".join(report.summary.stale_hosts))}</p></section>')
    untrusted = _small_table(
        "untrusted", words["untrusted"],
        [words["col_store"], words["col_key"], words["col_trust"], words["col_reason"]],
        [[f.store, f.key, words.get(f.trust, f.trust), f.reason] for f in report.untrusted])
    unreadable = _small_table(
        "unreadable", words["unreadable"],
        [words["col_store"], words["col_key"], words["col_error"]],
        [[str(u.get("store")), str(u.get("key") or "-"), str(u.get("error"))]
         for u in report.unreadable])
    return unreadable + stale + untrusted


def render_html(report: FleetReport, *, lang: str = "en",
                drill_limit_seconds: float = DEFAULT_DRILL_LIMIT) -> str:
    """The whole page. Raises KeyError for a language not in LANGUAGES."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    words = TEXT[lang]
    generated = utc_iso(report.generated_at)[:19] + "Z"
    since = (f'<span>{_e(words["since"])}: {_e(utc_iso(report.since)[:19])}Z</span>'
             if report.since is not None else "")
    meta = (f'<p class="meta"><span>{_e(words["generated"])}: {_e(generated)}</span>'
            f'<span>{_e(words["stores"])}: {_e(", ".join(report.stores))}</span>'
            f'<span>{_e(words["keyring"])}: {_e(", ".join(report.keyring) or words["none"])}'
            f"</span>{since}</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">'
        f'<link rel="icon" href="data:,"><title>{_e(words["title"])} {_e(generated)}</title>'
        f"<style>{_CSS}</style></head><body data-format=\"{_e(report.format)}\">"
        f'<header><h1>{_e(words["title"])}</h1><p class="sub">{_e(words["subtitle"])}</p>'
        f"{meta}</header>{_summary(report, words)}"
        f"{_table(report, words, drill_limit_seconds)}{_problems(report, words)}"
        f"<script>{_JS}</script></body></html>\n")


def verdict_label(verdict: str, lang: str) -> str:
    """The label a verdict or trust state is shown with (tests read the page back with it)."""
    return TEXT[lang].get(verdict, verdict)

