"""Verification support that is not a job: the GB/T 20988 level table, signed evidence
reports, and drill scratch space."""
