"""`store bootstrap`: create or check a bucket — versioning, Object Lock default retention, a
lifecycle rule for noncurrent versions, public access blocked — reading every setting back and
reporting what the server lacks (and what the user gives up) instead of raising."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from drbackup.errors import S3_ACCESS_DENIED, S3_BUCKET_MISSING, S3_CREDENTIALS_REJECTED
from drbackup.store.errors import BucketMissing
from drbackup.store.s3 import S3Store

T = TypeVar("T")


LIFECYCLE_RULE_ID = "drbackup-expire-noncurrent"
_NOT_IMPLEMENTED_CODES = {"NotImplemented", "501", "MethodNotAllowed", "405", "InvalidRequest",
                          "XNotImplemented", "UnsupportedOperation"}
_NO_CONFIG_CODES = {"ObjectLockConfigurationNotFoundError", "NoSuchLifecycleConfiguration",
                    "NoSuchPublicAccessBlockConfiguration"}

# What an operator loses when the server lacks a feature: said in the report and the error.
GIVES_UP = {
    "versioning": ("an overwritten or deleted object is gone for good: a compromised host (or a "
                   "bug) can destroy backups that are already in the store"),
    "object_lock": ("object versions are protected by IAM policy alone: anyone holding a key "
                    "with s3:DeleteObjectVersion (or the account owner) can still destroy them"),
    "lifecycle": ("noncurrent versions are never expired by the server: storage grows with "
                  "every prune until someone removes old versions by hand"),
    "public_access_block": ("nothing at the bucket level stops a policy or ACL from making "
                            "objects public (restic's data stays encrypted either way)"),
}


@dataclass(frozen=True)
class FeatureStatus:
    """One bucket feature after bootstrap, as read back from the server."""

    name: str
    status: str  # "ok", "missing" (server lacks it or refused it), "off" (not requested)
    detail: str
    gives_up: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "missing"


@dataclass(frozen=True)
class BootstrapReport:
    store: str
    bucket: str
    endpoint: str
    bucket_created: bool
    versioning: str
    lock_mode: str | None
    lock_days: int | None
    lifecycle_noncurrent_days: int | None
    public_access_blocked: bool | None
    features: list[FeatureStatus]

    @property
    def missing(self) -> list[FeatureStatus]:
        return [f for f in self.features if not f.ok]

    def feature(self, name: str) -> FeatureStatus:
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)


def _error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code or status


class _Unsupported(Exception):
    """The server refused or does not implement a bucket feature."""

    def __init__(self, code: str, text: str = ""):
        super().__init__(code)
        self.code = code
        self.text = text

    def why(self) -> str:
        detail = f"{self.code}: {self.text}" if self.text else self.code
        if self.code in S3_ACCESS_DENIED:
            return (f"these credentials may not change it ({detail}); bootstrap uses the store's "
                    "maintenance_credentials_file when set, see config/policies/")
        return f"server refused it ({detail})"


def _bootstrap_call(store: S3Store, action: str, fn: Callable[[], T]) -> T:
    """Like S3Store.call, but a refused/unimplemented feature becomes _Unsupported (so bootstrap
    can report it) while unreachable servers and rejected credentials still raise StoreErrors."""
    try:
        return fn()
    except ClientError as exc:
        code = _error_code(exc)
        if code in S3_CREDENTIALS_REJECTED or code in S3_BUCKET_MISSING:
            with store.translate_errors(action):
                raise
        message = str(exc.response.get("Error", {}).get("Message", ""))
        raise _Unsupported(code, message) from None
    except BotoCoreError as exc:
        with store.translate_errors(action):
            raise exc from None


def bootstrap_bucket(store: S3Store, *, lock_mode: str | None, lock_days: int,
                     create: bool = True) -> BootstrapReport:
    """Create or check the bucket: versioning on, Object Lock default retention (when
    lock_mode is given), a lifecycle rule expiring noncurrent versions after lock_days, public
    access blocked. Every setting is read back; what the server lacks is reported as a missing
    feature (with what the user gives up), not raised. Raises StoreError when the server cannot
    be reached or the credentials are rejected."""
    client = store.client
    bucket = store.bucket
    created = False
    lock_at_creation: str | None = None
    try:
        store.check()
    except BucketMissing:
        if not create:
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if store.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": store.region}
        if lock_mode is not None:
            try:
                _bootstrap_call(store, "create bucket", lambda: client.create_bucket(
                    **kwargs, ObjectLockEnabledForBucket=True))
                created = True
            except _Unsupported as exc:
                lock_at_creation = exc.code
        if not created:
            store.call("create bucket", lambda: client.create_bucket(**kwargs))
            created = True

    features: list[FeatureStatus] = []

    # Versioning (Object Lock needs it too).
    def versioning_status() -> str:
        return str(client.get_bucket_versioning(Bucket=bucket).get("Status", "") or "Off")

    versioning = "Off"
    try:
        versioning = _bootstrap_call(store, "read versioning", versioning_status)
        if versioning != "Enabled":
            _bootstrap_call(store, "enable versioning", lambda: client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}))
            versioning = _bootstrap_call(store, "read versioning", versioning_status)
        if versioning == "Enabled":
            features.append(FeatureStatus("versioning", "ok", "Enabled"))
        else:
            features.append(FeatureStatus("versioning", "missing",
                                          f"read back as {versioning}", GIVES_UP["versioning"]))
    except _Unsupported as exc:
        features.append(FeatureStatus("versioning", "missing", exc.why(),
                                      GIVES_UP["versioning"]))

    # Object Lock default retention.
    def read_lock() -> tuple[str | None, int | None, bool]:
        try:
            config = client.get_object_lock_configuration(Bucket=bucket).get(
                "ObjectLockConfiguration", {})
        except ClientError as exc:
            if _error_code(exc) in _NO_CONFIG_CODES:
                return None, None, False
            raise
        enabled = config.get("ObjectLockEnabled") == "Enabled"
        retention = config.get("Rule", {}).get("DefaultRetention", {})
        mode = retention.get("Mode")
        days = retention.get("Days")
        if days is None and retention.get("Years"):
            days = int(retention["Years"]) * 365
        return (mode.lower() if mode else None), (int(days) if days else None), enabled

    found_mode: str | None = None
    found_days: int | None = None
    if lock_mode is None:
        with suppress(_Unsupported):
            found_mode, found_days, _ = _bootstrap_call(store, "read object lock", read_lock)
        detail = "not requested (set lock_mode in the store's config)"
        if found_mode:
            detail = f"not requested, but the bucket has {found_mode} {found_days} days"
        features.append(FeatureStatus("object_lock", "off", detail, GIVES_UP["object_lock"]))
    else:
        try:
            found_mode, found_days, enabled = _bootstrap_call(store, "read object lock", read_lock)
            if found_mode != lock_mode or found_days != lock_days:
                put_lock = client.put_object_lock_configuration
                _bootstrap_call(store, "set object lock", lambda: put_lock(
                    Bucket=bucket, ObjectLockConfiguration={
                        "ObjectLockEnabled": "Enabled",
                        "Rule": {"DefaultRetention": {"Mode": lock_mode.upper(),  # type: ignore[typeddict-item]
                                                      "Days": lock_days}}}))
                found_mode, found_days, enabled = _bootstrap_call(store, "read object lock",
                                                                  read_lock)
            if enabled and found_mode == lock_mode and found_days == lock_days:
                features.append(FeatureStatus("object_lock", "ok",
                                              f"{lock_mode} retention, {lock_days} days"))
            else:
                features.append(FeatureStatus(
                    "object_lock", "missing",
                    f"read back as {found_mode or 'none'} {found_days or 0} days",
                    GIVES_UP["object_lock"]))
        except _Unsupported as exc:
            why = exc.why()
            if lock_at_creation:
                why = f"server refused a bucket with Object Lock ({lock_at_creation})"
            elif not created:
                why += ("; many servers enable Object Lock only when a bucket is created: "
                        "create a new bucket with 'store bootstrap'")
            features.append(FeatureStatus("object_lock", "missing", why, GIVES_UP["object_lock"]))

    # Lifecycle: expire noncurrent versions once their lock has run out.
    expire_days = lock_days
    noncurrent_days: int | None = None

    def read_rules() -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in client.get_bucket_lifecycle_configuration(
                Bucket=bucket).get("Rules", [])]
        except ClientError as exc:
            if _error_code(exc) in _NO_CONFIG_CODES:
                return []
            raise

    def ours(rules: list[dict[str, Any]]) -> int | None:
        for rule in rules:
            if rule.get("ID") == LIFECYCLE_RULE_ID and rule.get("Status") == "Enabled":
                days = rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
                return int(days) if days is not None else None
        return None

    try:
        rules = _bootstrap_call(store, "read lifecycle", read_rules)
        noncurrent_days = ours(rules)
        if noncurrent_days != expire_days:
            keep = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
            rule = {"ID": LIFECYCLE_RULE_ID, "Status": "Enabled",
                    "Filter": {"Prefix": store.location.prefix},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": expire_days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
            put_rules = client.put_bucket_lifecycle_configuration
            _bootstrap_call(store, "set lifecycle", lambda: put_rules(
                Bucket=bucket, LifecycleConfiguration={"Rules": [*keep, rule]}))  # type: ignore[list-item]
            noncurrent_days = ours(_bootstrap_call(store, "read lifecycle", read_rules))
        if noncurrent_days == expire_days:
            features.append(FeatureStatus(
                "lifecycle", "ok", f"noncurrent versions expire after {expire_days} days"))
        else:
            features.append(FeatureStatus("lifecycle", "missing",
                                          "rule not found when read back", GIVES_UP["lifecycle"]))
    except _Unsupported as exc:
        features.append(FeatureStatus("lifecycle", "missing", exc.why(),
                                      GIVES_UP["lifecycle"]))

    # Public access block.
    blocked: bool | None = None
    flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

    def read_block() -> bool:
        try:
            config = client.get_public_access_block(Bucket=bucket).get(
                "PublicAccessBlockConfiguration", {})
        except ClientError as exc:
            if _error_code(exc) in _NO_CONFIG_CODES:
                return False
            raise
        return all(bool(config.get(flag)) for flag in flags)

    try:
        blocked = _bootstrap_call(store, "read public access block", read_block)
        if not blocked:
            _bootstrap_call(store, "block public access", lambda: client.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                                "BlockPublicPolicy": True,
                                                "RestrictPublicBuckets": True}))
            blocked = _bootstrap_call(store, "read public access block", read_block)
        features.append(FeatureStatus("public_access_block", "ok" if blocked else "missing",
                                      "all public access blocked" if blocked
                                      else "not all flags set when read back",
                                      "" if blocked else GIVES_UP["public_access_block"]))
    except _Unsupported as exc:
        blocked = None
        features.append(FeatureStatus("public_access_block", "missing",
                                      exc.why(),
                                      GIVES_UP["public_access_block"]))

    return BootstrapReport(
        store=store.name, bucket=bucket, endpoint=store.location.endpoint,
        bucket_created=created, versioning=versioning, lock_mode=found_mode,
        lock_days=found_days, lifecycle_noncurrent_days=noncurrent_days,
        public_access_blocked=blocked, features=features)
