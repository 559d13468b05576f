"""drbackup status [--json]: per source the last success, last result, next run, pending changes
and the running job; per agency which host does its maintenance (forget, prune, check) and
whether it is this one; works whether the daemon runs or not (state DB + the daemon's status
file)."""

from __future__ import annotations

import time
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.daemon.instance import read_status, running_daemon_pid
from drbackup.jobs.maintenance import maintenance_role
from drbackup.jobs.runtime import STATE_FILE
from drbackup.state import StateDB


def register(commands: Any) -> None:
    parser = commands.add_parser("status", help="what the daemon did, does and will do")
    parser.add_argument("--agency", help="only this agency")
    parser.set_defaults(handler=show_status)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _watch_text(source: dict[str, Any]) -> str:
    text = "yes" if source["watched"] else ("scanning" if source["polled"] else "no")
    if source["watch_overflows"]:
        text += f" ({source['watch_overflows']} overflows)"
    return text


def collect_status(ctx: CliContext) -> dict[str, Any]:
    config = ctx.config
    state_dir = config.daemon.state_dir
    pid = running_daemon_pid(state_dir)
    live = read_status(state_dir) if pid is not None else None
    live_sources: dict[str, Any] = (live or {}).get("sources", {})
    running = (live or {}).get("running", [])
    queued = (live or {}).get("queued", [])
    state = StateDB(state_dir / STATE_FILE)
    try:
        sources = []
        agencies = []
        for agency in ctx.agencies(ctx.args.agency):
            role = maintenance_role(config, state, agency)
            agencies.append({
                "agency": agency.id, "host": role.host,
                "maintenance_host": role.maintenance_host,
                "maintenance_host_set": agency.maintenance_host is not None,
                "maintains_here": role.maintains_here,
                "repository_owner": role.repository_owner,
                "repository_checked_at": role.checked_at,
                "sources_here": [s.id for s in agency.sources]})
            for source in agency.sources:
                last = state.last_run(agency=agency.id, job="backup", source=source.id)
                ok = state.last_run(agency=agency.id, job="backup", source=source.id,
                                    results=("success", "warning"))
                info = live_sources.get(f"{agency.id}/{source.id}", {})
                job = next((j for j in running
                            if j.get("agency") == agency.id and j.get("source") == source.id),
                           None)
                sources.append({
                    "agency": agency.id,
                    "source": source.id,
                    "last_success": ok.finished_at if ok else None,
                    "last_snapshot": ok.snapshot_id if ok else None,
                    "last_result": last.result if last else None,
                    "last_error": last.error if last and not last.succeeded else None,
                    "next_run": info.get("next_run"),
                    "pending_changes": info.get("pending_changes", 0),
                    "watched": info.get("watched"),
                    "polled": info.get("polled"),
                    "watch_overflows": info.get("watch_overflows", 0),
                    "running_job": job,
                    "queued": any(j.get("agency") == agency.id and j.get("source") == source.id
                                  for j in queued),
                })
    finally:
        state.close()
    return {
        "daemon": {
            "running": pid is not None,
            "pid": pid,
            "started_at": (live or {}).get("started_at"),
            "updated_at": (live or {}).get("updated_at"),
            "jobs_running": len(running),
            "jobs_queued": len(queued),
            "restic_processes": (live or {}).get("restic_processes", 0),
            "peak_running_jobs": (live or {}).get("peak_running_jobs"),
        },
        "host": config.host_name(),
        "agencies": agencies,
        "sources": sources,
    }


def show_status(ctx: CliContext) -> int:
    status = collect_status(ctx)
    daemon = status["daemon"]
    if ctx.out.json_mode:
        ctx.out.result(status)
        return 0
    if daemon["running"]:
        ctx.out.line(f"daemon: running (pid {daemon['pid']}), {daemon['jobs_running']} job(s) "
                     f"running, {daemon['jobs_queued']} queued")
    else:
        ctx.out.line("daemon: not running")
    rows = []
    for s in status["sources"]:
        job = s["running_job"]
        rows.append([
            f"{s['agency']}/{s['source']}", _when(s["last_success"]), s["last_result"] or "-",
            _when(s["next_run"]) if daemon["running"] else "-",
            str(s["pending_changes"]) if daemon["running"] else "-",
            f"{job['kind']} ({job['trigger']})" if job else ("queued" if s["queued"] else "-"),
            _watch_text(s) if daemon["running"] else "-",
        ])
    ctx.out.table(["SOURCE", "LAST SUCCESS", "LAST RESULT", "NEXT RUN", "PENDING", "RUNNING",
                   "WATCH"], rows)
    for s in status["sources"]:
        if s["last_error"]:
            ctx.out.line(f"{s['agency']}/{s['source']}: {s['last_error']}")
    for agency in status["agencies"]:
        # One host, as before (no maintenance_host, no other owner): nothing to say.
        if agency["maintenance_host_set"] or agency["repository_owner"] not in (
                None, agency["host"]):
            ctx.out.line(f"{agency['agency']}: {_maintenance_text(agency)}")
    return 0


def _maintenance_text(agency: dict[str, Any]) -> str:
    """Who does the agency's forget, prune and check, as this host knows it."""
    owner, here = agency["repository_owner"], agency["host"]
    if agency["maintains_here"]:
        text = f"maintenance (forget, prune, check) on this host ({here})"
    elif owner is not None and owner != agency["maintenance_host"]:
        text = (f"maintenance REFUSED here: the repository names {owner} its maintenance "
                f"host, this host's config names {agency['maintenance_host']}")
    else:
        text = f"maintenance on {agency['maintenance_host']}; this host ({here}) backs up only"
    if agency["repository_checked_at"] is not None:
        text += f" (repository's claim read {_when(agency['repository_checked_at'])})"
    return text
