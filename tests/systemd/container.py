"""A real systemd in a container: the Debian 12 rootfs of scripts/systemd-rootfs.sh booted with
`systemd-nspawn --boot`, driven from the host with `nsenter` into its PID 1's namespaces (the
host need not run systemd: no machined, so no `machinectl`/`systemd-run -M`)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOTFS = Path(os.environ.get("DRBACKUP_ROOTFS", "/var/cache/drbackup-test/rootfs"))
MACHINE = "drbackup-test"


class CannotBoot(Exception):
    """nspawn is missing, we are not root, or the container did not reach a running systemd."""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Container:
    rootfs: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    leader: int = 0
    boot_seconds: float = 0.0
    _log: object = field(default=None, repr=False)

    # -- life cycle --------------------------------------------------------------------------
    @staticmethod
    def preflight() -> None:
        if os.geteuid() != 0:
            raise CannotBoot("not root (systemd-nspawn needs root)")
        for tool in ("systemd-nspawn", "nsenter", "debootstrap"):
            if shutil.which(tool) is None:
                raise CannotBoot(f"{tool} is not installed (make setup installs "
                                 "systemd-container and debootstrap)")

    def boot(self, timeout: float = 120.0) -> None:
        started = time.monotonic()
        log = self.log_path.open("wb")
        self._log = log
        # --volatile=overlay: the cached rootfs stays pristine, every boot starts from it and
        # writes into a tmpfs overlay. --private-network: the container's loopback only (the
        # metrics port and the database servers do not meet the host's or other tests').
        argv = ["systemd-nspawn", "--boot", "--quiet", f"--directory={self.rootfs}",
                f"--machine={MACHINE}", "--register=no", "--keep-unit", "--private-network",
                "--volatile=overlay", "--console=passive", "--kill-signal=SIGRTMIN+3",
                "--capability=all"]
        # A writable /proc/sys, as on a host: systemd-sysctl.service applies the sysctl.d
        # drop-in at boot (it is skipped on a read-only /proc/sys).
        env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="1")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CannotBoot(f"systemd-nspawn exited with {self.process.returncode}: "
                                 + self.log_tail())
            kids = _children(self.process.pid)
            if kids:
                self.leader = kids[0]
                break
            time.sleep(0.2)
        else:
            raise CannotBoot("no container process appeared: " + self.log_tail())
        state = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CannotBoot(f"systemd-nspawn exited with {self.process.returncode}: "
                                 + self.log_tail())
            done = self.run("systemctl", "is-system-running", check=False, timeout=20)
            state = done.stdout.strip()
            if state in ("running", "degraded"):
                self.boot_seconds = time.monotonic() - started
                return
            time.sleep(0.5)
        raise CannotBoot(f"systemd did not finish booting (is-system-running: {state!r}): "
                         + self.log_tail())

    def shutdown(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)  # nspawn: the --kill-signal to PID 1 (halt)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- commands inside ---------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 300,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv in the container (all of PID 1's namespaces, its root, as root)."""
        cmd = ["nsenter", f"--target={self.leader}", "--all", "-r", "-w", "--",
               "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
               "LANG=C.UTF-8", "HOME=/root", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=input_text)
        if check and done.returncode != 0:
            raise AssertionError(f"in container: {shlex.join(argv)} exited {done.returncode}\n"
                                 f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def sh(self, script: str, check: bool = True, timeout: float = 300
           ) -> subprocess.CompletedProcess[str]:
        return self.run("/bin/sh", "-ec", script, check=check, timeout=timeout)

    def write(self, path: str, text: str, mode: int = 0o644, owner: str = "root:root") -> None:
        self.run("install", "-D", "-m", f"{mode:o}", "-o", owner.split(":")[0],
                 "-g", owner.split(":")[1], "/dev/stdin", path, input_text=text)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str | None = None, since: str | None = None) -> str:
        argv = ["journalctl", "--no-pager", "-o", "cat"]
        if unit:
            argv += ["-u", unit]
        if since:
            argv += ["--since", since]
        return self.run(*argv, check=False).stdout
