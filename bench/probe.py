"""Peak footprint of a process: peak RSS (VmHWM) plus the peak bytes under its temp dir."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

POLL_SECONDS = 0.02


def status_bytes(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmHWM, VmRSS...), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def tree_bytes(root: Path) -> int:
    """Bytes of every file under `root` (files may vanish while it walks)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name), follow_symlinks=False).st_size
    return total


class Probe:
    """While entered, polls the temp dir; peak RSS is the kernel's own high-water mark."""

    def __init__(self, pid: int, tmp: Path) -> None:
        self.pid = pid
        self.tmp = tmp
        self.peak_tmp = 0
        self.peak_rss = 0
        self.peak_vm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def rss(self) -> int:
        return status_bytes(self.pid, "VmRSS")

    def reset_peak(self) -> None:
        """Start VmHWM again from the current RSS (Linux: `5` to /proc/PID/clear_refs)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.peak_tmp = max(self.peak_tmp, tree_bytes(self.tmp))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_tmp = max(self.peak_tmp, tree_bytes(self.tmp))
        try:
            self.peak_rss = status_bytes(self.pid, "VmHWM")
            self.peak_vm = status_bytes(self.pid, "VmPeak")  # since start: not reset
        except (FileNotFoundError, ProcessLookupError):
            pass
