"""restic's stdout read into models, for the verbs whose JSON is more than one message type:
the single JSON document of snapshots/stats/forget, find's hits and forget's groups."""

from __future__ import annotations

import json

from drbackup.engine.errors import ResticError
from drbackup.engine.jsonlines import as_object, as_objects, as_str_list
from drbackup.engine.models import FindHit, ForgetGroup, RepoTarget, Snapshot
from drbackup.engine.runner import ProcessResult


def single_json(result: ProcessResult, target: RepoTarget, action: str) -> object:
    """The first JSON document on stdout (else the last JSON message). Raises ResticError when
    restic printed none."""
    for line in result.stdout.text:
        stripped = line.strip()
        if stripped.startswith(("[", "{")):
            try:
                return json.loads(stripped)
            except ValueError:
                continue
    if result.stdout.messages:
        return result.stdout.messages[-1]
    raise ResticError(f"restic {action} on {target.display} printed no JSON",
                      "see the log", stderr_tail=result.stderr_tail())


def find_hits(result: ProcessResult) -> list[FindHit]:
    """One hit per (snapshot, path) of `restic find --json`, snapshots in restic's order; both
    its one-array form and its one-message-per-snapshot form are read."""
    hits: list[FindHit] = []
    for line in result.stdout.text:
        stripped = line.strip()
        if not stripped.startswith("["):
            continue
        try:
            payload = json.loads(stripped)
        except ValueError:
            continue
        for group in payload if isinstance(payload, list) else []:
            if not isinstance(group, dict):
                continue
            snapshot = str(group.get("snapshot", ""))
            hits += [FindHit.from_json(snapshot, match) for match in group.get("matches") or []
                     if isinstance(match, dict)]
    for message in result.stdout.messages:
        if "matches" in message:
            snapshot = str(message.get("snapshot", ""))
            hits += [FindHit.from_json(snapshot, m) for m in message.get("matches") or []
                     if isinstance(m, dict)]
    return hits


def forget_groups(payload: object) -> list[ForgetGroup]:
    """`restic forget --json`'s groups: what each keeps, removes, and why."""
    groups: list[ForgetGroup] = []
    for item in payload if isinstance(payload, list) else []:
        if not isinstance(item, dict):
            continue
        reasons: dict[str, list[str]] = {}
        for reason in as_objects(item.get("reasons")):
            snap = as_object(reason.get("snapshot"))
            reasons[str(snap.get("id", ""))] = as_str_list(reason.get("matches"))
        groups.append(ForgetGroup(
            tags=as_str_list(item.get("tags")),
            host=str(item.get("host", "")),
            paths=as_str_list(item.get("paths")),
            keep=[Snapshot.from_json(s) for s in as_objects(item.get("keep"))],
            remove=[Snapshot.from_json(s) for s in as_objects(item.get("remove"))],
            reasons=reasons,
        ))
    return groups


def removed_locks(result: ProcessResult) -> int:
    """How many stale locks `restic unlock` says it removed ("successfully removed N locks");
    0 when it names none."""
    removed = 0
    for line in result.stdout.text:
        words = line.split()
        if line.startswith("successfully removed") and len(words) > 2 and words[2].isdigit():
            removed = int(words[2])
    return removed
