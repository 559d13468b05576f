"""Schema migrations of the state database, in order. Append; never edit a released one."""

MIGRATIONS: list[str] = [
    # 1: runs of every job, and small persistent values.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job TEXT NOT NULL,
        agency TEXT NOT NULL,
        source TEXT,
        store TEXT,
        trigger TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        result TEXT NOT NULL,
        snapshot_id TEXT,
        files_new INTEGER,
        files_changed INTEGER,
        files_unmodified INTEGER,
        files_unreadable INTEGER,
        bytes_added INTEGER,
        bytes_processed INTEGER,
        error TEXT,
        details TEXT
    );
    CREATE INDEX runs_by_target ON runs (agency, source, job, started_at);
    CREATE INDEX runs_by_result ON runs (result);
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: the process that owns a run (drbackup/state/owner.py), so runs of killed processes
    # are closed without waiting for a daemon restart.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    """,
]
