"""The character set a MariaDB snapshot recorded is read back from its tags, which whoever holds
the agency's repository password writes: only plain names, one of each, reach CREATE DATABASE."""

from __future__ import annotations

import pytest

from drbackup.errors import TargetRefusedError
from drbackup.sources.mysql import DatabaseCharset, recorded_charset


def test_recorded_charset_read_back_from_tags_is_validated() -> None:
    assert recorded_charset([], []) is None
    assert recorded_charset(["utf8mb4"], ["utf8mb4_bin"]) == DatabaseCharset("utf8mb4",
                                                                             "utf8mb4_bin")
    for charsets, collations in ((["utf8mb4; DROP DATABASE x"], ["utf8mb4_bin"]),
                                 (["utf8mb4"], []), (["latin1", "utf8mb4"], ["latin1_bin"]),
                                 (["utf8mb4"], ["utf8mb4_bin */"])):
        with pytest.raises(TargetRefusedError):
            recorded_charset(charsets, collations)
