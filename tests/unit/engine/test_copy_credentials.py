"""restic copy opens two repositories in one process: which side gets which credentials
(engine/crossrepo.py). Two S3 stores with different keys: the destination goes through rclone
(restic copy writes whole packs there; relaying those costs less than relaying the source's
ranged reads) with its config in a memfd, never in the environment, argv or a file; the
source's keys are restic's own environment."""

from __future__ import annotations

import os
from pathlib import Path

from drbackup.engine import RepoTarget
from drbackup.engine.argv import command
from drbackup.engine.crossrepo import copy_access, needs_rclone, rclone_remote


def s3(label: str, key: str, secret: str, region: str = "us-east-1",
       ca: Path | None = None) -> RepoTarget:
    return RepoTarget(f"s3:https://h.example:9000/{label}/planning", Path("/pw"), label=label,
                      ca_file=ca, backend_env=(
                          ("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret),
                          ("AWS_DEFAULT_REGION", region)))


LOCAL = RepoTarget("/srv/repo", Path("/pw"), label="local")


def test_same_key_on_both_sides_shares_the_process_environment() -> None:
    with copy_access(s3("a", "k", "s"), s3("b", "k", "s")) as access:
        assert access.env == {"RESTIC_FROM_REPOSITORY": "s3:https://h.example:9000/a/planning",
                              "RESTIC_FROM_PASSWORD_FILE": "/pw"}
        assert not access.through_rclone and access.pass_fds == ()


def test_local_source_needs_no_key_and_s3_source_to_local_brings_its_own() -> None:
    with copy_access(LOCAL, s3("b", "k", "s")) as access:
        assert "AWS_ACCESS_KEY_ID" not in access.env
    with copy_access(s3("a", "k", "secret-a"), LOCAL) as access:
        assert access.env["AWS_SECRET_ACCESS_KEY"] == "secret-a"


def test_different_keys_or_regions_put_the_destination_behind_rclone() -> None:
    assert needs_rclone(s3("a", "k1", "s1"), s3("b", "k2", "s2"))
    assert needs_rclone(s3("a", "k", "s"), s3("b", "k", "s", "eu-west-1"))
    assert not needs_rclone(s3("a", "k", "s"), LOCAL)


def test_the_rclone_config_lives_in_a_memfd_closed_afterwards(tmp_path: Path) -> None:
    city_ca, dr_ca = tmp_path / "city.pem", tmp_path / "dr.pem"
    source = s3("a", "key-one", "secret-one", ca=city_ca)
    destination = s3("b", "key-two", "secret-two", "gov-1", ca=dr_ca)
    with copy_access(source, destination) as access:
        [fd] = access.pass_fds
        assert access.env["RCLONE_CONFIG"] == f"/dev/fd/{fd}"
        assert access.env["RESTIC_REPOSITORY"] == "rclone:drbackup-destination:b/planning"
        assert access.env["RESTIC_FROM_REPOSITORY"] == source.url  # restic's own S3 backend
        # restic's S3 backend serves the source alone: its keys, not the destination's.
        assert access.env["AWS_ACCESS_KEY_ID"] == "key-one"
        assert access.env["AWS_SECRET_ACCESS_KEY"] == "secret-one"
        assert access.env["AWS_DEFAULT_REGION"] == "us-east-1"
        assert not any("secret-two" in value for value in access.env.values())
        assert access.env["RCLONE_CA_CERT"] == str(dr_ca) and access.cacerts == (city_ca,)
        assert access.options == ("-o", "rclone.connections=10")
        text = Path(f"/proc/self/fd/{fd}").read_text()
        assert "secret_access_key = secret-two" in text and "env_auth = false" in text
        assert "secret-one" not in text
        assert "endpoint = https://h.example:9000" in text and "region = gov-1" in text
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
    try:
        os.fstat(fd)
        raise AssertionError("the memfd is still open")
    except OSError:
        pass


def test_a_session_token_of_the_destination_only_is_emptied_for_restic() -> None:
    destination = RepoTarget("s3:https://h.example:9000/b/planning", Path("/pw"), label="b",
                             backend_env=(("AWS_ACCESS_KEY_ID", "k2"),
                                          ("AWS_SECRET_ACCESS_KEY", "s2"),
                                          ("AWS_SESSION_TOKEN", "token-two")))
    with copy_access(s3("a", "k1", "s1"), destination) as access:
        assert access.env["AWS_SESSION_TOKEN"] == ""
        assert "session_token = token-two" in Path(
            f"/proc/self/fd/{access.pass_fds[0]}").read_text()


def test_remote_path_and_the_ca_options_in_argv() -> None:
    _, path = rclone_remote(s3("bucket", "k", "s"))
    assert path == "drbackup-destination:bucket/planning"
    argv = command("restic", ["copy", "abc"], json_output=False, limit_upload_kib=512,
                   cacerts=[Path("/etc/ca.pem"), Path("/etc/ca.pem")], limit_download_kib=64)
    assert argv == ["restic", "--limit-upload", "512", "--limit-download", "64",
                    "--cacert", "/etc/ca.pem", "copy", "abc"]
