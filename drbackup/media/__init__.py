"""Offline copies on removable media (#19): the medium's layout, its signed manifest, and the
read-back of every file against it. Pure: no restic, no state; jobs/media_*.py drive it."""
