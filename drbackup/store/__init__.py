"""The only door to S3 (boto3)."""

from typing import TYPE_CHECKING, Any

from drbackup.store.credentials import S3Credentials, read_credentials_file
from drbackup.store.errors import (
    BucketMissing,
    ObjectMissing,
    StoreAccessDenied,
    StoreCredentialsRejected,
    StoreError,
    StoreFeatureMissing,
    StoreUnreachable,
)
from drbackup.store.location import S3Location

if TYPE_CHECKING:
    from drbackup.store.bootstrap import BootstrapReport, FeatureStatus
    from drbackup.store.s3 import ObjectVersion, S3Store, StoreHealth

# boto3 takes a tenth of a second or more to import; commands on local stores (a restore from a
# local repository, `config check`, `version`) should not pay for it, so the boto3 half of this
# package loads on first use.
_FROM_S3 = {"ObjectVersion", "S3Store", "StoreHealth"}
_FROM_BOOTSTRAP = {"BootstrapReport", "FeatureStatus"}


def __getattr__(name: str) -> Any:
    if name in _FROM_S3:
        from drbackup.store import s3
        return getattr(s3, name)
    if name in _FROM_BOOTSTRAP:
        from drbackup.store import bootstrap
        return getattr(bootstrap, name)
    raise AttributeError(f"module 'drbackup.store' has no attribute {name!r}")

__all__ = [
    "BootstrapReport",
    "BucketMissing",
    "FeatureStatus",
    "ObjectMissing",
    "ObjectVersion",
    "S3Credentials",
    "S3Location",
    "S3Store",
    "StoreAccessDenied",
    "StoreCredentialsRejected",
    "StoreError",
    "StoreFeatureMissing",
    "StoreHealth",
    "StoreUnreachable",
    "read_credentials_file",
]
