"""Persistent state: the record of every run."""

from drbackup.state.db import RESULTS, RunCounts, RunRecord, StateDB

__all__ = ["RESULTS", "RunCounts", "RunRecord", "StateDB"]
