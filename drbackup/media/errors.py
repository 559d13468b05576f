"""The two ways a medium fails: it is not what it claims (26) or an export to it did not end
(27). Exit codes documented in README.md."""

from __future__ import annotations

from drbackup.errors import DrBackupError, ExitCode


class MediaInvalidError(DrBackupError):
    """Altered, truncated, unsigned, signed by an unknown key, replayed or older than imported."""

    exit_code = ExitCode.MEDIA_INVALID


class MediaIncompleteError(DrBackupError):
    """An export to the medium started and did not finish: the next export completes it."""

    exit_code = ExitCode.MEDIA_INCOMPLETE
