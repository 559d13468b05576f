"""The small history charts of the HTML city report (cli/fleet_html.py, #20 item 3), per source
of a host row whose summary carries history (fleet/history.py):

- RPO over time: one bar per slice of the window (a day of the 30), its height the worst RPO in
  that slice, red past the target (the dashed line);
- drills: one dot per drill at its time, green ok, red failed, orange suspect; its height the
  measured RTO estimate against the RTO target (the dashed line), on the baseline when none
  was measured; a vertical mark where a drill becomes older than the agency's drill-age limit.

Inline SVG with presentation attributes only (no style attribute: the page's CSP allows its own
style sheet alone). Every drawn point carries class "pt" and the SVG its count in data-points,
so a test can compare what is drawn with the JSON."""

from __future__ import annotations

from html import escape

from drbackup.config.units import short_duration
from drbackup.fleet.history import RPO_SLICES, SourceHistory
from drbackup.fleet.summary import SourceStatus
from drbackup.jobs.evidence import utc_iso

WIDTH, HEIGHT = 150, 26
LEFT = 30  # the label's room; the window is drawn from LEFT to WIDTH
PLOT = WIDTH - LEFT
_TOP = 3  # room above the highest point
COLOURS = {"ok": "#2e7d32", "failed": "#c0392b", "suspect": "#e67e00"}


def _e(value: object) -> str:
    return escape(str(value), quote=True)



def _x(at: float, start: float, window: float) -> float:
    return LEFT + max(0.0, min(float(PLOT), (at - start) / window * PLOT))


def _y(value: float, top: float) -> float:
    return HEIGHT - 1 - min(value, top) / top * (HEIGHT - 1 - _TOP)


def _target_line(target: float, top: float) -> str:
    y = _y(target, top)
    return (f'<line class="target" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#000" stroke-width="1" stroke-dasharray="3,2"/>')


def _frame(kind: str, source: str, points: int, label: str, short: str, body: str) -> str:
    return (f'<svg class="history {kind}" data-history="{kind}" data-source="{_e(source)}" '
            f'data-points="{points}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{_e(label)}"><title>{_e(label)}</title>'
            f'<text x="0" y="{HEIGHT / 2 + 3:.0f}" font-size="9">{_e(short)}</text>'
            f'<line x1="{LEFT}" x2="{WIDTH}" y1="{HEIGHT - 0.5}" y2="{HEIGHT - 0.5}" '
            f'stroke="#999" stroke-width="1"/>{body}</svg>')


def rpo_chart(source: SourceStatus, history: SourceHistory, published_at: float,
              words: dict[str, str]) -> str:
    """Worst RPO per slice against the RPO target."""
    window, target = history.window_seconds, source.rpo_target_seconds
    start = published_at - window
    top = max([target, *(p[1] for p in history.rpo)]) * 1.1 or 1.0
    slice_width = PLOT / RPO_SLICES
    bars = []
    for end, worst in history.rpo:
        x = _x(end, start, window) - slice_width
        y = _y(worst, top)
        colour = COLOURS["failed"] if worst > target else COLOURS["ok"]
        tip = (f"{utc_iso(end)[:10]}: {words['chart_rpo']} {short_duration(worst)} / "
               f"{short_duration(target)}")
        bars.append(f'<rect class="pt rpo-pt" x="{max(LEFT, x) + 0.5:.1f}" y="{y:.1f}" '
                    f'width="{max(1.0, slice_width - 1):.1f}" height="{HEIGHT - 1 - y:.1f}" '
                    f'fill="{colour}"><title>{_e(tip)}</title></rect>')
    label = words["chart_rpo_history"].format(source=source.source, window=short_duration(window))
    return _frame("rpo", source.source, len(bars), label, words["chart_rpo"],
                  "".join(bars) + _target_line(target, top))


def drill_chart(source: SourceStatus, history: SourceHistory, published_at: float,
                limit: float, words: dict[str, str]) -> str:
    """Every drill of the window: its result, its RTO against the target; the age limit."""
    window, target = history.window_seconds, source.rto_target_seconds
    start = published_at - window
    rtos = [float(d[2]) for d in history.drills if isinstance(d[2], int | float)]
    top = max([target, *rtos]) * 1.1 or 1.0
    dots = []
    for at, code, rto in history.drills:
        assert isinstance(at, int | float) and isinstance(code, str)
        x = _x(at, start, window)
        y = HEIGHT - 3.5 if not isinstance(rto, int | float) else _y(float(rto), top)
        measured = short_duration(float(rto)) if isinstance(rto, int | float) else "-"
        tip = (f"{utc_iso(at)[:16]}Z: {words['drill_' + code]}, {words['chart_rto']} "
               f"{measured} / {short_duration(target)}")
        dots.append(f'<circle class="pt drill-pt drill-{code}" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="2.5" fill="{COLOURS[code]}"><title>{_e(tip)}</title></circle>')
    mark = ""
    if published_at - limit > start:
        x = _x(published_at - limit, start, window)
        mark = (f'<line class="limit" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{HEIGHT}" '
                'stroke="#555" stroke-width="1" stroke-dasharray="1,2"/>')
    label = words["chart_drill_history"].format(source=source.source, window=short_duration(window))
    return _frame("drills", source.source, len(dots), label, words["chart_drill"],
                  mark + _target_line(target, top) + "".join(dots))


def history_charts(sources: list[SourceStatus], published_at: float, limit: float,
                   words: dict[str, str]) -> str | None:
    """The charts of every source of a row; None when no source carries history."""
    if not any(s.history is not None for s in sources):
        return None
    parts = []
    for source in sources:
        head = f'<div class="src">{_e(source.source)}</div>'
        if source.history is None:
            parts.append(f'<div class="hist">{head}<span class="note">'
                         f'{_e(words["no_history"])}</span></div>')
            continue
        parts.append(f'<div class="hist" data-source="{_e(source.source)}">{head}'
                     f"{rpo_chart(source, source.history, published_at, words)}"
                     f"{drill_chart(source, source.history, published_at, limit, words)}"
                     "</div>")
    return "".join(parts)
