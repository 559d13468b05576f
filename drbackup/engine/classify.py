"""The one exit-code switch: a finished restic run (exit code, stderr) becomes nothing or one of
the typed errors of drbackup/engine/errors.py, with the hint an operator needs and every secret
of the repository redacted from what it shows."""

from __future__ import annotations

import re
from collections.abc import Sequence

from drbackup.engine.errors import (
    BackendAccessDenied,
    BackendCredentialsRejected,
    BackendUnreachable,
    RepositoryLocked,
    RepositoryMissing,
    ResticError,
    ResticInterrupted,
    ResticTimeout,
    WrongPassword,
)
from drbackup.engine.jsonlines import error_text
from drbackup.engine.models import RepoTarget
from drbackup.engine.runner import ProcessResult
from drbackup.errors import ExitCode, s3_code_in, s3_exit_code

_UNREACHABLE = re.compile(
    r"connection refused|no such host|dial tcp|i/o timeout|network is unreachable|"
    r"connection reset|no route to host|TLS handshake timeout|server misbehaving",
    re.IGNORECASE,
)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return text


def raise_for(result: ProcessResult, target: RepoTarget | None, action: str,
              ok_codes: tuple[int, ...] = (0,)) -> None:
    """Raise the typed error for a failed run; nothing when it ended with one of ok_codes."""
    error = classify(result, target, action, ok_codes)
    if error is not None:
        raise error


def classify(result: ProcessResult, target: RepoTarget | None, action: str,
             ok_codes: tuple[int, ...] = (0,)) -> ResticError | None:
    """The error a run's outcome means, or None when it succeeded."""
    if result.returncode in ok_codes and not result.timed_out:
        return None
    where = target.display if target else "restic"
    secrets = target.secrets() if target else []
    tail = redact(result.stderr_tail(), secrets)
    detail = error_detail(result, secrets)
    if result.timed_out:
        return ResticTimeout(
            f"{action} on {where} did not finish within its time limit and was stopped",
            "raise the timeout in the config if the data really needs longer",
            stderr_tail=tail, returncode=result.returncode)
    code = result.returncode
    if result.terminated or code in (130, -2, -15, 143):
        return ResticInterrupted(f"{action} on {where} was interrupted", "run it again",
                                 stderr_tail=tail, returncode=code)
    if code == 10:
        return RepositoryMissing(
            f"repository {where} does not exist",
            "create it with 'drbackup repo init', or check the store url",
            stderr_tail=tail, returncode=code)
    if code == 11:
        return RepositoryLocked(
            f"repository {where} is locked by another process",
            "wait for the other job; if none runs, 'drbackup unlock' removes stale locks",
            stderr_tail=tail, returncode=code)
    if code == 12:
        return WrongPassword(
            f"wrong password for repository {where}",
            "check the agency's password_file; it must hold this repository's password",
            stderr_tail=tail, returncode=code)
    s3_exit = s3_exit_code(s3_code_in(tail) or "")
    if s3_exit == ExitCode.STORE_CREDENTIALS:
        return BackendCredentialsRejected(
            f"the store rejected the credentials during {action} on {where}: {detail}",
            "check aws_access_key_id/aws_secret_access_key in the credentials_file",
            stderr_tail=tail, returncode=code)
    if s3_exit == ExitCode.STORE_ACCESS:
        return BackendAccessDenied(
            f"the store denied {action} on {where}: {detail}",
            "the credentials lack this permission; see config/policies/",
            stderr_tail=tail, returncode=code)
    if _UNREACHABLE.search(tail):
        return BackendUnreachable(
            f"the store for {where} is unreachable: {detail}",
            "check the network and the store url; jobs retry when it returns",
            stderr_tail=tail, returncode=code)
    hint = "see the log for restic's full output"
    if "no space left on device" in tail.lower():
        hint = ("out of disk space where restic writes (the restore target, its cache or a "
                "local repository): free space there, or write elsewhere")
    return ResticError(f"restic {action} failed on {where} (exit {code}): {detail}",
                       hint, stderr_tail=tail, returncode=code)


def half_initialised(result: ProcessResult, target: RepoTarget) -> ResticError | None:
    """The error for an init that found a key but no config, or None."""
    if result.returncode == 0 or "already contains keys" not in result.stderr_tail():
        return None
    # restic init writes the key, then the config: an init killed in between leaves a
    # repository that every command calls missing (no config) and init refuses (keys).
    return ResticError(
        f"repository {target.display} holds a key but no config: an earlier init was "
        "interrupted before it finished",
        "nothing else can have been stored there yet: delete the repository's keys/ "
        "folder in the store, then run the job again",
        stderr_tail=redact(result.stderr_tail(), target.secrets()),
        returncode=result.returncode)


def error_detail(result: ProcessResult, secrets: Sequence[str]) -> str:
    """restic's last error; when that only counts the errors before it ("There were 91
    errors"), the first of them too, which is the one that says what went wrong."""
    items = [m for m in result.stderr.messages if m.get("message_type") == "error"]
    for message in reversed(result.stderr.messages):
        if message.get("message_type") in ("exit_error", "error"):
            last = redact(error_text(message), secrets)
            if items and message is not items[0] and message.get("message_type") == (
                    "exit_error"):
                first = redact(error_text(items[0]), secrets)
                count = " ".join(last.split()).removeprefix("Fatal: ").rstrip(".")
                return f"{count}; the first: {first}"
            return last
    lines = [line.strip() for line in result.stderr.text if line.strip()]
    if lines:
        return redact(lines[-1].removeprefix("Fatal: "), secrets)
    return "no error text"
