"""The distribution's headless Chromium (Debian: chromium-headless-shell or chromium) driven as a
throwaway subprocess: the DOM after scripts ran (--dump-dom), the console messages
(--enable-logging=stderr prints each as a CONSOLE line), a screenshot. A private profile per
call and every network request refused, so a page that needs the net shows it as an error."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser")
_CONSOLE = re.compile(r":CONSOLE[:(\]]")
# Lines Chromium logs on its own in a container (no D-Bus, no GPU): not the page's.
_NOISE = ("dbus", "gpu", "sandbox", "crashpad", "fontconfig", "Fontconfig")


def binary() -> str | None:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Rendered:
    dom: str
    console: list[str]  # every console message and uncaught error of the page
    failed_requests: list[str]  # network requests the page tried (all refused)


def _argv(profile: Path) -> list[str]:
    exe = binary()
    if exe is None:
        raise RuntimeError("no headless Chromium (Debian package 'chromium-headless-shell', "
                           "scripts/setup.sh installs it)")
    profile.mkdir(parents=True, exist_ok=True)
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9", "--enable-logging=stderr", "--v=0"]


def render(url: str, workdir: Path, *, timeout: float = 60) -> Rendered:
    """Load `url` (file:///...#hash allowed), run its scripts, return the DOM and console."""
    done = subprocess.run([*_argv(workdir / "profile-dom"), "--dump-dom", url],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    failed = [line for line in done.stderr.splitlines()
              if "net::ERR" in line and not any(n in line for n in _NOISE)]
    return Rendered(done.stdout, console, failed)


def screenshot(url: str, png: Path, workdir: Path, *, size: tuple[int, int] = (1400, 1100),
               timeout: float = 60) -> Path:
    """A PNG of the page as a reader sees it."""
    done = subprocess.run([*_argv(workdir / "profile-shot"), f"--screenshot={png}",
                           f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", url],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0 and png.exists() and png.stat().st_size > 1000, \
        done.stderr[-2000:]
    return png


def print_pdf(url: str, pdf: Path, workdir: Path, *, timeout: float = 60) -> Path:
    """The page printed (its @page size and @media print rules apply)."""
    done = subprocess.run([*_argv(workdir / "profile-pdf"), f"--print-to-pdf={pdf}",
                           "--no-pdf-header-footer", url],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0 and pdf.exists(), done.stderr[-2000:]
    return pdf
