"""One table of S3 errors for both doors (#15 item 5): the same S3 error gives the same exit code
whether restic met it (its stderr, through engine/classify.py) or boto3 did (a ClientError,
through store/s3.py). Before, AccessDenied was exit 8 through restic and 9 through boto3."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from drbackup.engine.classify import classify
from drbackup.engine.jsonlines import parse_lines
from drbackup.engine.models import RepoTarget
from drbackup.engine.runner import ProcessResult
from drbackup.errors import (
    S3_ACCESS_DENIED,
    S3_BUCKET_MISSING,
    S3_CREDENTIALS_REJECTED,
    DrBackupError,
    ExitCode,
    s3_code_in,
    s3_exit_code,
)
from drbackup.store.credentials import S3Credentials
from drbackup.store.location import S3Location
from drbackup.store.s3 import S3Store

TARGET = RepoTarget("s3:http://s3.example/bucket/a", Path("/pw"))
# What restic 0.18 prints (minio-go's messages) for each code, as seen against S3 and moto.
RESTIC_SAYS = {
    "AccessDenied": "Fatal: unable to open config file: Stat: Access Denied.",
    "InvalidAccessKeyId": "Fatal: unable to open config file: Stat: The Access Key Id you "
                          "provided does not exist in our records.",
    "SignatureDoesNotMatch": "Fatal: create repository: The request signature we calculated "
                             "does not match the signature you provided.",
    "ExpiredToken": "Fatal: Stat: The provided token has expired.",
}


def _restic_exit(stderr: str) -> ExitCode:
    result = ProcessResult(["restic"], 1, parse_lines([]), parse_lines([stderr + "\n"]), 0.1,
                           False, False)
    error = classify(result, TARGET, "backup")
    assert error is not None
    return error.exit_code


def _boto_exit(code: str, status: int) -> ExitCode:
    store = S3Store("offsite", S3Location.parse("s3:http://127.0.0.1:1/bucket"),
                    S3Credentials("AKIAEXAMPLE", "secret"))
    response = {"Error": {"Code": code, "Message": "m"},
                "ResponseMetadata": {"HTTPStatusCode": status}}
    with pytest.raises(DrBackupError) as raised, store.translate_errors("list"):
        raise ClientError(response, "ListObjectsV2")  # type: ignore[arg-type]
    return raised.value.exit_code


@pytest.mark.parametrize("code", sorted(RESTIC_SAYS))
def test_restic_and_boto3_give_one_exit_code_per_s3_error(code: str) -> None:
    expected = s3_exit_code(code)
    assert expected is not None
    assert _restic_exit(RESTIC_SAYS[code]) == expected
    assert _restic_exit(f"Fatal: {code}: something") == expected
    assert _boto_exit(code, 403 if expected == ExitCode.STORE_ACCESS else 400) == expected


def test_the_table() -> None:
    assert {s3_exit_code(c) for c in S3_CREDENTIALS_REJECTED} == {ExitCode.STORE_CREDENTIALS}
    assert {s3_exit_code(c) for c in S3_ACCESS_DENIED | S3_BUCKET_MISSING} == {
        ExitCode.STORE_ACCESS}
    assert s3_exit_code("SlowDown") is None
    assert s3_code_in("no such file: /srv/AccessDeniedReport.pdf") is None  # a word, not a code
    assert s3_code_in("error: Forbidden") == "Forbidden"
    assert _boto_exit("SomethingElse", 403) == ExitCode.STORE_ACCESS  # status decides
