"""Where an S3 repository lives, parsed from a restic-style URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from drbackup.errors import ConfigError


@dataclass(frozen=True)
class S3Location:
    endpoint: str  # scheme://host[:port]
    bucket: str
    prefix: str  # no leading/trailing slash; "" for the bucket root

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Parse s3:https://host[:port]/bucket[/prefix]. Raises ConfigError when malformed."""
        raw = url.removeprefix("s3:")
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"store url {url!r} is not s3:http(s)://host/bucket[/prefix]",
                              "use path-style URLs, e.g. s3:https://s3.example.gov/bucket")
        path = parts.path.strip("/")
        if not path:
            raise ConfigError(f"store url {url!r} names no bucket",
                              "add the bucket: s3:https://host/bucket")
        bucket, _, prefix = path.partition("/")
        return cls(f"{parts.scheme}://{parts.netloc}", bucket, prefix.strip("/"))

    def child(self, name: str) -> S3Location:
        prefix = f"{self.prefix}/{name}" if self.prefix else name
        return S3Location(self.endpoint, self.bucket, prefix)

    @property
    def restic_url(self) -> str:
        suffix = f"/{self.prefix}" if self.prefix else ""
        return f"s3:{self.endpoint}/{self.bucket}{suffix}"
