"""Which roles a globals dump (pg_dumpall --globals-only) gives a password."""

from __future__ import annotations

from drbackup.sources.pgglobals import role_passwords


def test_role_passwords_reads_quoted_names_and_the_last_statement() -> None:
    dump = (b"CREATE ROLE \"Finance Ops\";\n"
            b"ALTER ROLE \"Finance Ops\" WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$a';\n"
            b"ALTER ROLE Clerk WITH LOGIN PASSWORD 'md5abc';\n"
            b"ALTER ROLE clerk WITH LOGIN PASSWORD 'it''s';\n"
            b"ALTER ROLE nopass WITH LOGIN;\n"
            b"COMMENT ON ROLE x IS 'PASSWORD ''nope''';\n")
    assert role_passwords(dump) == {"Finance Ops": "SCRAM-SHA-256$a", "clerk": "it's"}
