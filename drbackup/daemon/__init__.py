"""The daemon: watch, schedule, queue, persist, survive (see docs/daemon.md)."""
