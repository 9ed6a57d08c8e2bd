"""Atomic file writes with ordinary permissions: write a temporary file beside the target, then rename it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def readable_tmp(directory: str | os.PathLike, name: str, suffix: str = ".tmp") -> str:
    """A new temporary file in `directory` with the permissions of an ordinary new file (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    tmp = readable_tmp(path.parent, path.name)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def slug(name: str) -> str:
    """A file-name-safe form of a policy or config name (plot files are named `roofline_<slug>`)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
