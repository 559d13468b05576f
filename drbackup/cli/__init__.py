"""The drbackup command line."""
