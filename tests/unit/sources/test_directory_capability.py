"""#21: the directory pre-check decides as the kernel will for restic. A root-owned 0700 source
is readable by a non-root process holding CAP_DAC_READ_SEARCH (the unit's only capability);
os.access(), which checks the real uid and ignores capabilities, refused it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CODE = ("import sys; from pathlib import Path; from drbackup.config.models import "
        "DirectorySource; from drbackup.sources.directory import plan_directory; "
        "from drbackup.errors import DrBackupError\n"
        "src = DirectorySource.model_validate({'id': 'docs', 'kind': 'directory', "
        "'paths': [sys.argv[1]]})\n"
        "try:\n    plan_directory(src); print('planned')\n"
        "except DrBackupError as exc:\n    print('refused', exc.one_line())\n")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as another user with a capability")
@pytest.mark.parametrize(("caps", "expected"), [("+dac_read_search", "planned"),
                                                 ("-all", "refused")])
def test_a_root_only_directory_is_planned_with_cap_dac_read_search(
        tmp_path: Path, caps: str, expected: str) -> None:
    source = tmp_path / "root-only"
    source.mkdir(mode=0o700)
    (source / "secret.txt").write_text("x")
    tmp_path.chmod(0o755)
    repo = Path(__file__).resolve().parents[3]
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            f"--inh-caps={caps}", f"--ambient-caps={caps}", "--",
            sys.executable, "-c", CODE, str(source)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=repo,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.stdout.split()[:1] == [expected], (done.stdout, done.stderr)
