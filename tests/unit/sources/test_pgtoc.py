"""Partial PostgreSQL restores: the table-of-contents entries chosen for --schema / --table
mirror pg_dump -n / -t (a table with its data, comments, grants, owned sequence, default,
constraints, index and trigger; not the foreign key of another table, not a view over it), from
a real `pg_restore --list --verbose` of PostgreSQL 15."""

from __future__ import annotations

import pytest

from drbackup.errors import NotFoundError, UsageError
from drbackup.sources.dbselect import PartialSelection
from drbackup.sources.pgtoc import list_file, parse_listing, select_entries

LISTING = """;
; Archive created at 2026-12-07 12:19:53 UTC
;     dbname: toc1
;
; Selected TOC Entries:
;
3386; 0 0 ENCODING - ENCODING
3387; 0 0 STDSTRINGS - STDSTRINGS
3388; 0 0 SEARCHPATH - SEARCHPATH
3389; 1262 16384 DATABASE - toc1 postgres
6; 2615 16385 SCHEMA - sales postgres
845; 1247 16387 TYPE sales mood postgres
;	depends on: 6
222; 1255 16424 FUNCTION public trg() postgres
221; 1259 16434 TABLE public Odd Name postgres
217; 1259 16402 TABLE public customers postgres
218; 1259 16409 TABLE sales lines postgres
;	depends on: 6
216; 1259 16392 TABLE sales orders postgres
;	depends on: 845 6
3390; 0 0 COMMENT sales TABLE orders postgres
;	depends on: 216
3391; 0 0 COMMENT sales COLUMN orders.note postgres
;	depends on: 216
3392; 0 0 ACL sales TABLE orders postgres
;	depends on: 216
220; 1259 16430 MATERIALIZED VIEW sales mv postgres
;	depends on: 216 6
215; 1259 16391 SEQUENCE sales orders_id_seq postgres
;	depends on: 216 6
3393; 0 0 SEQUENCE OWNED BY sales orders_id_seq postgres
;	depends on: 215
219; 1259 16426 VIEW sales v postgres
;	depends on: 216 216 216 845 6
3222; 2604 16395 DEFAULT sales orders id postgres
;	depends on: 215 216 216
3383; 0 16434 TABLE DATA public Odd Name postgres
;	depends on: 221
3380; 0 16402 TABLE DATA public customers postgres
;	depends on: 217
3381; 0 16409 TABLE DATA sales lines postgres
;	depends on: 218
3379; 0 16392 TABLE DATA sales orders postgres
;	depends on: 216
3394; 0 0 SEQUENCE SET sales orders_id_seq postgres
;	depends on: 215
3228; 2606 16408 CONSTRAINT public customers customers_pkey postgres
;	depends on: 217
3230; 2606 16413 CONSTRAINT sales lines lines_pkey postgres
;	depends on: 218
3226; 2606 16400 CONSTRAINT sales orders orders_pkey postgres
;	depends on: 216
3224; 1259 16401 INDEX sales orders_note postgres
;	depends on: 216
3233; 2620 16425 TRIGGER sales orders t1 postgres
;	depends on: 222 216
3231; 2606 16419 FK CONSTRAINT sales lines lines_cust_fkey postgres
;	depends on: 218 217 3228
3232; 2606 16414 FK CONSTRAINT sales lines lines_order_id_fkey postgres
;	depends on: 218 216 3226
3382; 0 16430 MATERIALIZED VIEW DATA sales mv postgres
;	depends on: 220 3385
"""


def ids(selection: PartialSelection, listing: str = LISTING) -> list[int]:
    return [e.dump_id for e in select_entries(parse_listing(listing), selection)]


def test_a_table_comes_with_what_pg_dump_t_gives_and_nothing_of_other_tables() -> None:
    assert ids(PartialSelection.of(tables=["sales.orders"])) == [
        216, 3390, 3391, 3392, 215, 3393, 3222, 3379, 3394, 3226, 3224, 3233]
    # The foreign key of sales.lines referencing it, the view and the materialized view over
    # it belong to them, not to the table.
    assert ids(PartialSelection.of(tables=["customers"])) == [217, 3380, 3228]


def test_a_schema_comes_whole_with_its_create_schema() -> None:
    chosen = ids(PartialSelection.of(schemas=["sales"]))
    assert chosen[0] == 6 and 845 in chosen and 3382 in chosen  # schema, enum, matview data
    assert 217 not in chosen and 222 not in chosen  # public.customers, public.trg()
    assert 3231 in chosen  # its own foreign key to public.customers (as pg_dump -n has it)


def test_the_list_file_holds_the_entries_lines() -> None:
    text = list_file(select_entries(parse_listing(LISTING),
                                    PartialSelection.of(tables=["customers"])))
    assert text.splitlines() == ["217; 1259 16402 TABLE public customers postgres",
                                 "3380; 0 16402 TABLE DATA public customers postgres",
                                 "3228; 2606 16408 CONSTRAINT public customers customers_pkey "
                                 "postgres"]


def test_names_the_dump_lacks_or_cannot_tell_apart_are_refused_in_one_line() -> None:
    with pytest.raises(NotFoundError) as missing:
        ids(PartialSelection.of(tables=["public.orders"]))
    assert missing.value.message.startswith("the dump has no table 'public.orders'")
    assert "sales.orders" in missing.value.message and "\n" not in missing.value.message
    with pytest.raises(NotFoundError, match="no schema 'nowhere'"):
        ids(PartialSelection.of(schemas=["nowhere"]))
    twice = LISTING + "\n9000; 1259 17000 TABLE sales customers postgres\n"
    with pytest.raises(UsageError, match="in several schemas of the dump"):
        ids(PartialSelection.of(tables=["customers"]), twice)
    clash = LISTING + "\n9001; 2615 17001 SCHEMA - sales x postgres\n"
    with pytest.raises(UsageError, match="cannot tell it from"):
        ids(PartialSelection.of(schemas=["sales"]), clash)


@pytest.mark.parametrize("bad", ["orders; DROP", "a b", "\"Odd\"", "1abc", "x" * 64, "a.b.c",
                                 ".x", "-n", "ord*"])
def test_names_that_are_not_plain_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="is not a plain name"):
        PartialSelection.of(tables=[bad])


def test_plain_names_in_any_script_are_taken() -> None:
    chosen = PartialSelection.of(schemas=["销售"], tables=["销售.订单", "orders", "orders"])
    assert chosen.describe() == "schema 销售, table 销售.订单, table orders"

