"""Evaluate the shipped IAM policies (config/policies/) against real S3 requests.

moto's IAM mode ignores a Deny on `PutObjectRetention`, `PutObjectLegalHold` and the lock
headers of `PutObject` (#14 hole 7), so "the daily key cannot shorten retention" cannot be
proved by asking moto. Instead: moto's recorder keeps every request restic and drbackup sent;
`s3_actions` maps each to the IAM actions AWS authorizes for it (the "Actions, resources and
condition keys for Amazon S3" table: a PutObject carrying `x-amz-object-lock-*` headers also
needs `s3:PutObjectRetention` / `s3:PutObjectLegalHold`, a versioned delete needs
`s3:DeleteObjectVersion`, a governance bypass header needs `s3:BypassGovernanceRetention`);
`evaluate` applies AWS's identity-policy logic (an explicit Deny wins, then an Allow, else the
implicit deny) to the shipped JSON.

Both sides refuse what they do not know: a request this table cannot map, or a policy using
`NotAction`, `NotResource`, `Condition` or `Principal`, fails the test instead of passing it.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ALLOW = "Allow"
DENY = "Deny"
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource"}


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        # IAM: action names are case-insensitive, ARNs case-sensitive; * and ? are wildcards.
        return (any(fnmatchcase(action.lower(), pattern.lower()) for pattern in self.actions)
                and any(fnmatchcase(resource, pattern) for pattern in self.resources))


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def load(cls, path: Path, bucket: str) -> Policy:
        document = json.loads(path.read_text().replace("<BUCKET>", bucket))
        if document.get("Version") != "2012-10-17":
            raise ValueError(f"{path.name}: Version must be 2012-10-17")
        statements = []
        for raw in document["Statement"]:
            unknown = set(raw) - _STATEMENT_KEYS
            if unknown:
                raise ValueError(f"{path.name}: statement {raw.get('Sid')} uses {sorted(unknown)}"
                                 ", which this evaluator does not implement")
            if raw["Effect"] not in (ALLOW, DENY):
                raise ValueError(f"{path.name}: Effect {raw['Effect']!r}")
            statements.append(Statement(raw["Effect"], _strings(raw["Action"]),
                                        _strings(raw["Resource"])))
        return cls(path.stem, tuple(statements))

    def evaluate(self, action: str, resource: str) -> Decision:
        matching = [s.effect for s in self.statements if s.matches(action, resource)]
        if DENY in matching:
            return Decision.EXPLICIT_DENY
        return Decision.ALLOWED if ALLOW in matching else Decision.IMPLICIT_DENY

    def allowed_actions(self) -> set[str]:
        return {a for s in self.statements if s.effect == ALLOW for a in s.actions}


def _strings(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Request:
    """One recorded HTTP request to the S3 endpoint."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def access_key(self) -> str | None:
        match = re.search(r"Credential=([^/,\s]+)/", self.headers.get("authorization", ""))
        if match:
            return match.group(1)
        credential = self.query.get("X-Amz-Credential")
        return credential[0].split("/")[0] if credential else None

    def describe(self) -> str:
        query = "&".join(sorted(self.query))
        return f"{self.method} {self.path}{'?' + query if query else ''}"


def read_recording(path: Path) -> list[Request]:
    """moto's recording file -> requests, moto's own API left out. moto writes each entry and
    its newline in two writes from its server threads, so two entries can share a line: the
    file is read as a stream of JSON values, not one per line."""
    requests = []
    for entry in _json_stream(path.read_text()):
        split = urlsplit(entry["url"])
        if split.path.startswith("/moto-api"):
            continue
        body = entry.get("body") or ""
        raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
        requests.append(Request(entry["method"], split.path,
                                parse_qs(split.query, keep_blank_values=True),
                                {k.lower(): str(v) for k, v in entry["headers"].items()}, raw))
    return requests


def _json_stream(text: str) -> Iterator[dict[str, Any]]:
    decoder, at = json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return
        value, at = decoder.raw_decode(text, at)
        yield value


# Bucket sub-resources: (method, query key) -> action.
_BUCKET_SUB = {
    ("GET", "location"): "s3:GetBucketLocation",
    ("GET", "versions"): "s3:ListBucketVersions",
    ("GET", "versioning"): "s3:GetBucketVersioning",
    ("PUT", "versioning"): "s3:PutBucketVersioning",
    ("GET", "object-lock"): "s3:GetBucketObjectLockConfiguration",
    ("PUT", "object-lock"): "s3:PutBucketObjectLockConfiguration",
    ("GET", "lifecycle"): "s3:GetLifecycleConfiguration",
    ("PUT", "lifecycle"): "s3:PutLifecycleConfiguration",
    ("DELETE", "lifecycle"): "s3:PutLifecycleConfiguration",
    ("GET", "publicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("GET", "policy"): "s3:GetBucketPolicy",
    ("PUT", "policy"): "s3:PutBucketPolicy",
    ("DELETE", "policy"): "s3:DeleteBucketPolicy",
    ("GET", "acl"): "s3:GetBucketAcl",
    ("PUT", "acl"): "s3:PutBucketAcl",
    ("GET", "uploads"): "s3:ListBucketMultipartUploads",
    ("GET", "encryption"): "s3:GetEncryptionConfiguration",
    ("GET", "tagging"): "s3:GetBucketTagging",
}
# Object sub-resources.
_OBJECT_SUB = {
    ("PUT", "retention"): "s3:PutObjectRetention",
    ("GET", "retention"): "s3:GetObjectRetention",
    ("PUT", "legal-hold"): "s3:PutObjectLegalHold",
    ("GET", "legal-hold"): "s3:GetObjectLegalHold",
    ("PUT", "acl"): "s3:PutObjectAcl",
    ("GET", "acl"): "s3:GetObjectAcl",
    ("PUT", "tagging"): "s3:PutObjectTagging",
    ("GET", "tagging"): "s3:GetObjectTagging",
    ("POST", "uploads"): "s3:PutObject",
    ("DELETE", "uploadId"): "s3:AbortMultipartUpload",
    ("GET", "uploadId"): "s3:ListMultipartUploadParts",
}
# Query keys that only shape a listing or a read; they add no action.
_PLAIN = {"list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token",
          "start-after", "encoding-type", "fetch-owner", "key-marker", "version-id-marker",
          "x-id", "partNumber", "uploadId", "response-content-type"}
_SIGNATURE = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
              "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}


class UnmappedRequest(ValueError):
    pass


def s3_actions(request: Request) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes for this path-style request."""
    bucket, _, key = request.path.lstrip("/").partition("/")
    if not bucket:
        raise UnmappedRequest(f"{request.describe()}: not a bucket request")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    subs = [q for q in request.query if q not in _PLAIN | _SIGNATURE | {"versionId", "delete"}]
    method = request.method
    if not key:
        if "delete" in request.query and method == "POST":
            return _multi_delete(request, bucket_arn)
        if not subs:
            plain = {"GET": "s3:ListBucket", "HEAD": "s3:ListBucket", "PUT": "s3:CreateBucket",
                     "DELETE": "s3:DeleteBucket"}
            if method in plain:
                return [(plain[method], bucket_arn)]
        elif len(subs) == 1 and (method, subs[0]) in _BUCKET_SUB:
            return [(_BUCKET_SUB[(method, subs[0])], bucket_arn)]
        raise UnmappedRequest(f"{request.describe()}: unknown bucket request; add it to "
                              "tests/support/iampolicy.py from the AWS S3 actions table")
    object_arn = f"{bucket_arn}/{unquote(key)}"
    versioned = "versionId" in request.query
    actions: list[str]
    if len(subs) == 1 and (method, subs[0]) in _OBJECT_SUB:
        actions = [_OBJECT_SUB[(method, subs[0])]]
    elif subs:
        raise UnmappedRequest(f"{request.describe()}: unknown object request")
    elif method in ("GET", "HEAD"):
        actions = ["s3:GetObjectVersion" if versioned else "s3:GetObject"]
    elif method in ("PUT", "POST"):  # PutObject, UploadPart, CompleteMultipartUpload
        actions = ["s3:PutObject"]
        if "x-amz-copy-source" in request.headers:
            source = unquote(request.headers["x-amz-copy-source"]).lstrip("/")
            actions_on_source = [("s3:GetObject", f"arn:aws:s3:::{source.split('?')[0]}")]
        else:
            actions_on_source = []
        if {"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"} & set(
                request.headers):
            actions.append("s3:PutObjectRetention")
        if "x-amz-object-lock-legal-hold" in request.headers:
            actions.append("s3:PutObjectLegalHold")
        if any(h == "x-amz-acl" or h.startswith("x-amz-grant-") for h in request.headers):
            actions.append("s3:PutObjectAcl")
        return [(a, object_arn) for a in actions] + actions_on_source
    elif method == "DELETE":
        actions = ["s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"]
    else:
        raise UnmappedRequest(f"{request.describe()}: unknown object request")
    if request.headers.get("x-amz-bypass-governance-retention", "").lower() == "true":
        actions.append("s3:BypassGovernanceRetention")
    return [(a, object_arn) for a in actions]


def _multi_delete(request: Request, bucket_arn: str) -> list[tuple[str, str]]:
    """DeleteObjects is authorized per key as DeleteObject (DeleteObjectVersion with an id)."""
    root = ET.fromstring(request.body)  # noqa: S314 - the body our own clients sent
    pairs = []
    for obj in root.iter():
        if not obj.tag.endswith("Object"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in obj}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        pairs.append((action, f"{bucket_arn}/{fields['Key']}"))
    if request.headers.get("x-amz-bypass-governance-retention", "").lower() == "true":
        pairs += [("s3:BypassGovernanceRetention", resource) for _, resource in pairs]
    return pairs


def decisions(policy: Policy, requests: list[Request]) -> list[tuple[str, str, str, Decision]]:
    """(request, action, resource, decision) for every action of every request."""
    return [(r.describe(), action, resource, policy.evaluate(action, resource))
            for r in requests for action, resource in s3_actions(r)]


def as_text(rows: list[tuple[str, str, str, Any]]) -> str:
    return "\n".join(f"  {request}: {action} on {resource}: {decision.value}"
                     for request, action, resource, decision in rows)
