"""Atomic file writes with ordinary permissions: write a temporary file beside the target, then rename it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PLOT_SUFFIXES = (".png", ".svg")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """An OSError naming the file the user asked for, not the temporary file an atomic write went through."""
    why = exc.strerror or str(exc).splitlines()[0]
    return OSError(f"cannot write {str(path)!r}: {why}")


def readable_tmp(directory: str | os.PathLike, name: str, suffix: str = ".tmp",
                 target: str | os.PathLike | None = None) -> str:
    """A new temporary file in `directory` with the permissions of an ordinary new file (mkstemp's are 0600).
    An error names `target` (default `directory/name`), the file the temporary one will become."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
    except OSError as exc:
        raise write_error(target or Path(directory) / name, exc) from None
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
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_paths(path: str | os.PathLike) -> list[Path]:
    """`x.png` or `x.svg` -> that file; `x` with no suffix -> x.png and x.svg. Checks the folder exists."""
    p = Path(path)
    if p.suffix and p.suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"plot file {str(p)!r}: unknown suffix {p.suffix!r}; use .png, .svg, or no suffix for both")
    if not p.parent.is_dir():
        raise OSError(f"plot folder {str(p.parent)!r} does not exist")
    return [p.with_suffix(s) for s in PLOT_SUFFIXES] if not p.suffix else [p]


def save_figure(fig, path: str | os.PathLike) -> list[Path]:
    """Write a matplotlib figure to `path` (see `plot_paths`), each file atomically, then close the figure."""
    import matplotlib.pyplot as plt

    targets = plot_paths(path)
    try:
        for t in targets:
            tmp = readable_tmp(t.parent, t.stem, t.suffix, target=t)
            try:
                fig.savefig(tmp, format=t.suffix.lstrip(".").lower())
                os.replace(tmp, t)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                raise write_error(t, exc) from None
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    finally:
        plt.close(fig)
    return targets


def slug(name: str) -> str:
    """A file-name-safe form of a policy or config name (plot files are named `roofline_<slug>`)."""
    # No dots: a policy file's name ("trial015.toml") would otherwise read as a file suffix.
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name))
