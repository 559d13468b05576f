"""The only door to S3 (boto3)."""

from drbackup.store.credentials import S3Credentials, read_credentials_file
from drbackup.store.errors import (
    BucketMissing,
    StoreAccessDenied,
    StoreCredentialsRejected,
    StoreError,
    StoreFeatureMissing,
    StoreUnreachable,
)
from drbackup.store.location import S3Location
from drbackup.store.s3 import (
    BootstrapReport,
    FeatureStatus,
    ObjectVersion,
    S3Store,
    StoreHealth,
)

__all__ = [
    "BootstrapReport",
    "BucketMissing",
    "FeatureStatus",
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
