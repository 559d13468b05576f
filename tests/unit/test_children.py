"""The one door for child processes other than restic (drbackup/children.py, #15 item 3): the
environment a child gets is exactly the one given, stdin is closed unless fed, a time limit is
a ChildTimeout, a program that is not there an OSError, and a probe never raises."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

import drbackup.children as children


def test_a_child_sees_only_the_environment_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    done = children.run([sys.executable, "-c", "import os, sys; print(sorted(os.environ)); "
                         "print(repr(sys.stdin.read()))"],
                        env={"PATH": os.environ["PATH"], "ONLY": "1"}, timeout=30)
    assert done.returncode == 0
    names, stdin = done.stdout.splitlines()
    assert "AWS_SECRET_ACCESS_KEY" not in names and "'ONLY'" in names
    assert stdin == "''"  # closed, not the caller's terminal


def test_time_limit_missing_program_and_probe(tmp_path: Path) -> None:
    with pytest.raises(children.ChildTimeout):
        children.run([sys.executable, "-c", "import time; time.sleep(30)"], env={}, timeout=0.5)
    with pytest.raises(OSError):
        children.run([str(tmp_path / "nope")], env={}, timeout=5)
    assert children.probe([str(tmp_path / "nope")], env={}) is None
    log = tmp_path / "log"
    with log.open("wb") as handle:
        children.run([sys.executable, "-c", "import sys; print('out'); print('err', "
                      "file=sys.stderr)"], env={}, timeout=30, log=handle)
    assert sorted(log.read_text().split()) == ["err", "out"]


def test_stop_asks_then_kills() -> None:
    stubborn = children.start([sys.executable, "-c", "import signal, time; "
                               "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"],
                              env={}, new_session=True)
    time.sleep(0.3)
    started = time.monotonic()
    children.stop(stubborn, signal.SIGTERM, timeout=0.5)
    assert stubborn.returncode == -signal.SIGKILL and time.monotonic() - started < 10
    children.stop(stubborn)  # already gone: nothing to do
