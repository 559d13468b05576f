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
    # 3: the ransomware guard (#16, drbackup/state/guard.py): a verdict per assessed snapshot,
    # retention freezes with their release, and allowances learned from false alarms.
    """
    CREATE TABLE guard_verdicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agency TEXT NOT NULL,
        source TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        run_id INTEGER,
        assessed_at REAL NOT NULL,
        verdict TEXT NOT NULL,
        churn REAL,
        rules TEXT NOT NULL,
        reasons TEXT NOT NULL,
        numbers TEXT NOT NULL,
        rule_values TEXT NOT NULL,
        false_alarm INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX guard_verdicts_by_source ON guard_verdicts (agency, source, id);
    CREATE UNIQUE INDEX guard_verdicts_by_snapshot ON guard_verdicts (agency, snapshot_id);
    CREATE TABLE guard_freezes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agency TEXT NOT NULL,
        source TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        since REAL NOT NULL,
        released_at REAL,
        released_by TEXT,
        release_reason TEXT,
        false_alarm INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX guard_freezes_by_agency ON guard_freezes (agency, released_at);
    CREATE TABLE guard_allowances (
        agency TEXT NOT NULL,
        source TEXT NOT NULL,
        rule TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (agency, source, rule)
    );
    """,
    # Offline media (#19): the catalogue of media written on this host, the sequence number per
    # agency per destination, and what was imported from media on this side of the gap.
    """
    CREATE TABLE media (
        label TEXT NOT NULL,
        agency TEXT NOT NULL,
        destination TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        state TEXT NOT NULL,
        written_at REAL NOT NULL,
        verified_at REAL,
        location TEXT,
        snapshots TEXT NOT NULL,
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        newest_snapshot_time REAL,
        PRIMARY KEY (label, agency)
    );
    CREATE TABLE media_sequences (
        agency TEXT NOT NULL,
        destination TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        PRIMARY KEY (agency, destination)
    );
    CREATE TABLE media_imports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agency TEXT NOT NULL,
        key_id TEXT NOT NULL,
        destination TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        label TEXT NOT NULL,
        imported_at REAL NOT NULL,
        snapshots TEXT NOT NULL
    );
    CREATE INDEX media_imports_by_agency ON media_imports (agency, key_id, destination);
    """,
    # Evidence reports imported from media (#19 §3): the drills and checks done where the data
    # lives (the other side of the gap), signed there, so this side's report can show them.
    """
    CREATE TABLE media_evidence (
        agency TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT,
        sub_kind TEXT,
        verdict TEXT,
        finished_at REAL,
        host TEXT NOT NULL,
        rto_estimate_seconds REAL,
        key_id TEXT NOT NULL,
        label TEXT NOT NULL,
        imported_at REAL NOT NULL,
        PRIMARY KEY (agency, name)
    );
    """,
]
