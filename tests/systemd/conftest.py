"""One booted container for the whole tests/systemd session (`make test-systemd`).

The rootfs is built, or reused from the cache, by scripts/systemd-rootfs.sh; a build failure
fails the session (it is our script). Only where nspawn cannot boot a systemd (not root, no
systemd-nspawn, no container support in the kernel) are the tests skipped, with one line
saying why, printed to the terminal as well as in the -ra summary."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.systemd.container import ROOT, ROOTFS, CannotBoot, Container

INOTIFY = ("max_user_watches", "max_queued_events", "max_user_instances")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "systemd: boots a real systemd in a container (make test-systemd)")


def _skip(request: pytest.FixtureRequest, why: str) -> None:
    line = f"SKIPPED tests/systemd: systemd-nspawn cannot boot here: {why}"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, yellow=True)
    else:
        print(line, file=sys.stderr)
    pytest.skip(line)


@pytest.fixture(scope="session")
def box(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Container]:
    try:
        Container.preflight()
    except CannotBoot as exc:
        _skip(request, str(exc))
    build = subprocess.run(["bash", str(ROOT / "scripts" / "systemd-rootfs.sh"), str(ROOTFS)],
                           cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, HOST_PY=sys.executable))
    if build.returncode != 0:
        pytest.fail(f"scripts/systemd-rootfs.sh failed ({build.returncode}):\n"
                    f"{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    # fs.inotify.* is global (no user namespace here): the container's boot applies the
    # drop-in to the host too; put the host's values back afterwards.
    saved = {name: Path(f"/proc/sys/fs/inotify/{name}").read_text() for name in INOTIFY}
    container = Container(ROOTFS, tmp_path_factory.mktemp("nspawn") / "console.log")
    try:
        try:
            container.boot()
        except CannotBoot as exc:
            _skip(request, str(exc))
        yield container
    finally:
        container.shutdown()
        for name, value in saved.items():
            Path(f"/proc/sys/fs/inotify/{name}").write_text(value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed step shows the service's journal: the evidence is in the container."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    box = next((v for v in funcargs.values() if isinstance(v, Container)), None)
    if report.failed and box is not None and box.leader:
        journal = box.run("journalctl", "--no-pager", "-o", "cat", "-n", "80", check=False)
        report.sections.append(("journal (last 80 lines)", journal.stdout))
    return report
