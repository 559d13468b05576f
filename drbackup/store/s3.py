"""The only door to S3: a boto3 client per store, with every failure mapped to a StoreError."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from drbackup.errors import S3_ACCESS_DENIED, S3_BUCKET_MISSING, S3_CREDENTIALS_REJECTED
from drbackup.store.credentials import S3Credentials
from drbackup.store.errors import (
    BucketMissing,
    ObjectMissing,
    StoreAccessDenied,
    StoreCredentialsRejected,
    StoreError,
    StoreUnreachable,
)
from drbackup.store.location import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")


@dataclass(frozen=True)
class StoreHealth:
    latency_seconds: float


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool


class S3Store:
    """One S3-compatible bucket, reached with one set of credentials."""

    def __init__(self, name: str, location: S3Location, credentials: S3Credentials,
                 region: str = "us-east-1", *, timeout: float = 10.0, retries: int = 2,
                 ca_file: Path | None = None):
        self.name = name
        self.location = location
        self.region = region
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            region_name=region,
        )
        self._client: S3Client = session.client(
            "s3",
            endpoint_url=location.endpoint,
            # A private CA (a government store's own): trusted for this store's client only.
            verify=str(ca_file) if ca_file is not None else None,
            config=BotoConfig(
                connect_timeout=timeout, read_timeout=timeout * 3,
                retries={"max_attempts": retries, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    @property
    def client(self) -> S3Client:
        return self._client

    @property
    def bucket(self) -> str:
        return self.location.bucket

    @contextmanager
    def translate_errors(self, action: str) -> Iterator[None]:
        """Turn botocore's exceptions into StoreErrors that name the store and the remedy."""
        where = f"store {self.name!r} ({self.location.endpoint}, bucket {self.bucket})"
        try:
            yield
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise StoreUnreachable(
                f"{where} is unreachable during {action}: {exc.__class__.__name__}",
                "check the network and the store url; jobs retry when it returns") from None
        except NoCredentialsError:
            raise StoreCredentialsRejected(f"{where}: no credentials for {action}",
                                           "check the store's credentials_file") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in S3_CREDENTIALS_REJECTED:
                raise StoreCredentialsRejected(
                    f"{where} rejected the credentials during {action} ({code})",
                    "check aws_access_key_id/aws_secret_access_key in the credentials_file",
                ) from None
            if code in S3_BUCKET_MISSING:
                raise BucketMissing(
                    f"{where}: bucket {self.bucket!r} does not exist",
                    "create it with 'drbackup store bootstrap' or let create_bucket = true",
                ) from None
            if code in S3_ACCESS_DENIED or status in S3_ACCESS_DENIED:
                raise StoreAccessDenied(
                    f"{where} denied {action} ({code or status})",
                    "the credentials lack this permission; see config/policies/") from None
            raise StoreError(f"{where}: {action} failed ({code or status})",
                             "see the store's logs") from None
        except BotoCoreError as exc:
            raise StoreUnreachable(f"{where}: {action} failed: {exc.__class__.__name__}",
                                   "check the network and the store url") from None

    def call(self, action: str, fn: Callable[[], T]) -> T:
        with self.translate_errors(action):
            return fn()

    def check(self) -> StoreHealth:
        """Reach the bucket with these credentials. Raises StoreUnreachable,
        StoreCredentialsRejected, BucketMissing or StoreAccessDenied."""
        started = time.monotonic()
        self.call("list", lambda: self._client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.location.prefix, MaxKeys=1))
        return StoreHealth(time.monotonic() - started)

    def ensure_bucket(self, *, create: bool) -> bool:
        """Make sure the bucket exists; True when it was created now."""
        try:
            self.check()
            return False
        except BucketMissing:
            if not create:
                raise
        kwargs: dict[str, object] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.call("create bucket", lambda: self._client.create_bucket(**kwargs))  # type: ignore[arg-type]
        return True

    def versions(self, prefix: str) -> list[ObjectVersion]:
        """Every version and delete marker under prefix, newest first per key."""
        def collect() -> list[ObjectVersion]:
            found: list[ObjectVersion] = []
            paginator = self._client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Versions", []):
                    found.append(ObjectVersion(item.get("Key", ""), item.get("VersionId", ""),
                                               bool(item.get("IsLatest")), False))
                for marker in page.get("DeleteMarkers", []):
                    found.append(ObjectVersion(marker.get("Key", ""), marker.get("VersionId", ""),
                                               bool(marker.get("IsLatest")), True))
            return found
        return self.call(f"list versions {prefix}", collect)

    def put_bytes(self, key: str, body: bytes) -> None:
        self.call(f"put {key}", lambda: self._client.put_object(
            Bucket=self.bucket, Key=key, Body=body))

    def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's content; with max_bytes, at most its first max_bytes + 1 bytes (a
        reader of hostile objects learns that one is too large without downloading it)."""
        def fetch() -> bytes:
            if max_bytes is None:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            else:
                response = self._client.get_object(Bucket=self.bucket, Key=key,
                                                   Range=f"bytes=0-{max_bytes}")
            return response["Body"].read()
        return self.call(f"get {key}", fetch)

    def list_keys(self, prefix: str) -> list[str]:
        def collect() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", []) if "Key" in item]
            return keys
        return self.call(f"list {prefix}", collect)

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Every object under prefix with its size (one listing, paginated)."""
        def collect() -> dict[str, int]:
            found: dict[str, int] = {}
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if "Key" in item:
                        found[item["Key"]] = int(item.get("Size", 0))
            return found
        return self.call(f"list {prefix}", collect)

    def stream(self, key: str, sink: Callable[[bytes], None], *, chunk: int = 1 << 20,
               max_bytes: int | None = None) -> int:
        """The object's content handed to `sink` piece by piece, never held whole; returns
        its size. With max_bytes, stops (StoreError) at an object larger than announced: a
        hostile store cannot make a reader write without end."""
        def fetch() -> int:
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                    raise ObjectMissing(f"store {self.name!r}: {key} is gone",
                                        "it was deleted after it was listed") from None
                raise
            total = 0
            try:
                while piece := body.read(chunk):
                    total += len(piece)
                    if max_bytes is not None and total > max_bytes:
                        raise StoreError(f"store {self.name!r}: {key} is larger than listed",
                                         "the store changed during the read; run it again")
                    sink(piece)
            finally:
                body.close()
            return total
        return self.call(f"get {key}", fetch)

    def list_prefixes(self, prefix: str) -> list[str]:
        """The "directories" right under prefix (a listing with delimiter '/'): one entry per
        agency under a store's prefix, without listing any repository object."""
        def collect() -> list[str]:
            found: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                found += [item["Prefix"] for item in page.get("CommonPrefixes", [])
                          if "Prefix" in item]
            return found
        return self.call(f"list {prefix}", collect)


# -- bootstrap: versioning, Object Lock, lifecycle, public access block ---------------------------
