"""Real disks that fail: a small tmpfs to fill up, and an ext4 file system on a loop device that the
kernel turns read-only on an error (errors=remount-ro), as it does to a failing server disk.

Both need root (mount); callers skip with the reason when `None` / `unavailable()` says so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True)


def mount_tmpfs(path: Path, size: str) -> bool:
    """A tmpfs of `size` at path (the full-disk tests fill it); False when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    return os.geteuid() == 0 and _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)).returncode == 0


def unmount(path: Path) -> None:
    _run("umount", "-l", str(path))


class Ext4Disk:
    """An ext4 image mounted at `path` with errors=remount-ro.

    fail() raises a file-system error through ext4's own sysfs trigger: the kernel aborts the journal
    and remounts read-only under every open file (SQLite then answers "disk I/O error" to writers and
    "attempt to write a readonly database" to new connections). repair() is the operator's way back:
    unmount, fsck, mount again (every process must have closed its files first).
    """

    def __init__(self, path: Path, image: Path, size_mb: int = 32) -> None:
        self.path, self.image, self.size_mb = path, image, size_mb

    def unavailable(self) -> str | None:
        if os.geteuid() != 0:
            return "needs root to mount a loop device"
        if not Path("/dev/loop-control").exists():
            return "no loop devices (/dev/loop-control) on this machine"
        for tool in ("mkfs.ext4", "e2fsck", "losetup"):
            if _run("which", tool).returncode != 0:
                return f"{tool} not found (e2fsprogs, util-linux)"
        return None

    def mount(self) -> None:
        if not self.image.exists():
            with self.image.open("wb") as f:
                f.truncate(self.size_mb * 1024 * 1024)
            self._check(_run("mkfs.ext4", "-q", "-F", str(self.image)), "mkfs.ext4")
        self.path.mkdir(parents=True, exist_ok=True)
        self._check(_run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.path)), "mount")

    @property
    def device(self) -> str:
        return os.path.basename(_run("findmnt", "-no", "SOURCE", str(self.path)).stdout.strip())

    def fail(self) -> None:
        Path(f"/sys/fs/ext4/{self.device}/trigger_fs_error").write_text("1")

    def is_read_only(self) -> bool:
        options = _run("findmnt", "-no", "OPTIONS", str(self.path)).stdout.strip().split(",")
        return "ro" in options or "emergency_ro" in options  # the kernel's error remount shows as the latter

    def repair(self) -> None:
        self._check(_run("umount", str(self.path)), "umount")
        fsck = _run("e2fsck", "-fy", str(self.image))
        if fsck.returncode not in (0, 1):  # 1: errors corrected
            raise RuntimeError(f"e2fsck exited {fsck.returncode}: {fsck.stdout}{fsck.stderr}")
        self.mount()

    def unmount(self) -> None:
        unmount(self.path)

    @staticmethod
    def _check(result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")
