"""drbackup: disaster-recovery backups of agency data with restic and S3-compatible stores."""

__version__ = "0.1.0"
