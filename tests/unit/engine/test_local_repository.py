"""local_repository_present reads restic's local layout (the `config` file) without
running restic, and says nothing (False) about remote repositories."""

from __future__ import annotations

from pathlib import Path

from drbackup.engine.models import RepoTarget
from drbackup.engine.restic import local_repository_present


def test_a_local_repository_is_present_once_it_has_its_config_file(tmp_path: Path) -> None:
    repository = tmp_path / "planning"
    target = RepoTarget(str(repository), tmp_path / "pw")
    assert not local_repository_present(target)  # no directory
    repository.mkdir()
    assert not local_repository_present(target)  # a directory, no repository
    (repository / "config").mkdir()
    assert not local_repository_present(target)  # `config` must be a file
    (repository / "config").rmdir()
    (repository / "config").write_bytes(b"x")
    assert local_repository_present(target)
    assert local_repository_present(RepoTarget(f"local:{repository}", tmp_path / "pw"))


def test_remote_repositories_are_never_present_locally(tmp_path: Path) -> None:
    (tmp_path / "config").write_bytes(b"x")
    for url in ("s3:http://127.0.0.1:9000/bucket/planning", "sftp:host:/srv/planning",
                f"rest:http://host/{tmp_path}", "planning"):
        assert not local_repository_present(RepoTarget(url, tmp_path / "pw"))
