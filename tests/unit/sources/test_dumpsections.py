"""Partial MariaDB restores: only the dump's head and the named tables' sections pass, however
the stream is chunked, with memory bounded on long lines; a named table the dump lacks fails
after the replay."""

from __future__ import annotations

import io
from typing import IO

import pytest

from drbackup.sources.base import DumpError
from drbackup.sources.dumpsections import MAX_HEADER, OnlyTables, TableSections

DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
--
-- Table structure for table `a`
--
DROP TABLE IF EXISTS `a`;
CREATE TABLE `a` (`id` int);
--
-- Dumping data for table `a`
--
INSERT INTO `a` VALUES (1);
--
-- Table structure for table `b`
--
DROP TABLE IF EXISTS `b`;
CREATE TABLE `b` (`id` int);
--
-- Dumping data for table `b`
--
INSERT INTO `b` VALUES (2);
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER tb before insert on b for each row set new.id = 1 */;;
DELIMITER ;
--
-- Temporary table structure for view `v`
--
/*!50001 CREATE VIEW `v` AS SELECT 1 AS `id` */;
--
-- Dumping routines for database 'd'
--
CREATE PROCEDURE `p`() select 1
;;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
"""


def cut(dump: bytes, tables: list[str], chunk: int) -> tuple[bytes, set[str]]:
    out = io.BytesIO()
    sections = TableSections(out, tables)
    for start in range(0, len(dump), chunk):
        sections.write(dump[start:start + chunk])
    sections.finish()
    return out.getvalue(), sections.seen


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_only_the_head_and_the_named_tables_pass_however_chunked(chunk: int) -> None:
    kept, seen = cut(DUMP, ["b"], chunk)
    text = kept.decode()
    assert seen == {"b"}
    assert "FOREIGN_KEY_CHECKS=0" in text and "CREATE TABLE `b`" in text
    assert "INSERT INTO `b`" in text and "TRIGGER tb" in text and "DELIMITER ;\n" in text
    for absent in ("`a`", "VIEW", "PROCEDURE", "SET FOREIGN_KEY_CHECKS=@OLD"):
        assert absent not in text


def test_a_long_line_streams_through_without_being_held() -> None:
    long_insert = b"INSERT INTO `a` VALUES " + b"(1)," * (MAX_HEADER * 50) + b"(2);\n"
    dump = DUMP.replace(b"INSERT INTO `a` VALUES (1);\n", long_insert)
    out = io.BytesIO()
    sections = TableSections(out, ["a"])
    for start in range(0, len(dump), 4096):
        sections.write(dump[start:start + 4096])
        assert len(sections._head) <= MAX_HEADER + 4096  # the bound itself
    sections.finish()
    assert long_insert in out.getvalue() and b"`b`" not in out.getvalue()


def test_a_header_like_text_inside_a_line_is_data() -> None:
    dump = DUMP.replace(b"INSERT INTO `a` VALUES (1);",
                        b"INSERT INTO `a` VALUES ('-- Table structure for table `b`');")
    kept, seen = cut(dump, ["a"], 5)
    assert seen == {"a"} and b"CREATE TABLE `b`" not in kept


def test_a_named_table_the_dump_lacks_fails_after_the_replay() -> None:
    def feed(sink: IO[bytes]) -> None:
        sink.write(DUMP)

    only = OnlyTables(feed, ["a", "zz"])
    out = io.BytesIO()
    only(out)
    assert b"CREATE TABLE `a`" in out.getvalue()
    with pytest.raises(DumpError) as failed:
        only.check()
    assert failed.value.message.startswith("the dump has no table 'zz'")
    assert "the other table(s) named were restored: a" in failed.value.hint
    OnlyTables(lambda sink: None, []).check()  # nothing named, nothing missing


def test_a_dump_without_headers_passes_only_its_settings_never_the_whole_dump() -> None:
    headless = b"\n".join(line for line in DUMP.split(b"\n")
                          if not line.startswith(b"--")) + b"\n"
    kept, seen = cut(headless, ["a"], 3)
    assert seen == set()
    assert kept.startswith(b"/*M!999999\\- enable the sandbox mode */\n")
    assert b"FOREIGN_KEY_CHECKS=0" in kept
    assert b"DROP TABLE" not in kept and b"INSERT" not in kept and b"CREATE" not in kept
