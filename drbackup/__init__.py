"""drbackup: disaster-recovery backups of agency data with restic and S3-compatible stores."""

import os

__version__ = "0.1.0"

# pydantic looks for plugins by scanning every installed package's entry points when the first
# model is built (~15 ms per command); drbackup uses none, and a restore should start at once.
# An explicit setting in the environment wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
