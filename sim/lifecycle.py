"""Process hygiene for long runs: worker pools whose processes die with their owner, and run-directory locks.

A pool worker whose owner is killed (kill -9, SIGTERM, an OOM kill) must not live on: it would hold memory, and a
stray trainer could keep writing checkpoints into a directory that a resumed run now uses. Two guards, both set up
by `die_with_parent` (the pool initializer of `worker_pool`):
- Linux: prctl(PR_SET_PDEATHSIG, SIGKILL), so the kernel kills the worker when the process that forked it exits;
- everywhere (and for forkserver workers, whose parent is the fork server): a daemon thread that polls every
  `POLL_S` whether the owner is still alive and exits the worker when it is not.
A local Dask cluster's workers (`sweep --executor dask` without `--scheduler`) need neither: distributed's own
process watchdog ends them when their owner dies (tested with the pool workers in tests/test_lifecycle.py).

`RunLock` marks a directory (or an output file) as owned by one live process: an flock'ed lock file holding the
owner's PID. The kernel drops an flock when its holder dies, so a lock left by a dead process is taken over
without any clean-up; a live holder makes the second command fail in one line.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

POLL_S = 0.5  # how often an orphan-watch thread looks for its owner
_PR_SET_PDEATHSIG = 1
_held_lock_fds: set[int] = set()  # lock fds of this process; a forked worker closes its copies (see die_with_parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def die_with_parent(owner_pid: int) -> None:
    """Pool initializer: make this worker exit when process `owner_pid` (the pool's owner) dies."""
    for fd in list(_held_lock_fds):  # inherited through fork: only the owner may keep its run locked
        try:
            os.close(fd)
        except OSError:
            pass
        _held_lock_fds.discard(fd)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watch thread below still works
    if not _alive(owner_pid):  # died before the guard was in place
        os._exit(1)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(POLL_S)
            if os.getppid() != parent or not _alive(owner_pid):
                os._exit(1)  # no clean-up: the owner's resume logic expects an abrupt stop anyway

    threading.Thread(target=watch, name="dsqsim-orphan-watch", daemon=True).start()


def _init_worker(owner_pid: int, progress_queue) -> None:
    die_with_parent(owner_pid)
    if progress_queue is not None:
        from sim.progress import set_worker_queue

        set_worker_queue(progress_queue)


def worker_pool(workers: int, mp_context=None, progress_queue=None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (see `die_with_parent`). With `progress_queue` (a queue
    of `mp_context`), `sim.progress.report` in a worker feeds it."""
    if mp_context is None:
        from sim.sweep.executors import process_context

        mp_context = process_context()
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp_context, initializer=_init_worker,
                               initargs=(os.getpid(), progress_queue))


class RunLocked(OSError):
    """Another live process owns the run directory or output."""


class RunLock:
    """An exclusive, PID-stamped lock on `target`: a directory (`target/.dsqsim.lock`, the directory is created) or,
    with `directory=False`, an output file (`target.lock` beside it).

    Use as a context manager. Raises `RunLocked` (one line naming the owner's PID) when a live process holds it.
    """

    def __init__(self, target: str | os.PathLike, what: str = "run directory", directory: bool = True):
        target = Path(target)
        self.target, self.what = target, what
        self.path = target / ".dsqsim.lock" if directory else target.with_name(target.name + ".lock")
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create {self.what} {str(self.target)!r}: {exc.strerror or exc}") from None
        for _ in range(20):  # retried only when the file was replaced under us (a racing release)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OSError(f"cannot write {self.what} {str(self.target)!r}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                who = f"process {owner}" if owner else "another process"
                if owner and not _alive(owner):
                    who = f"a leftover worker of process {owner} (which has exited)"
                raise RunLocked(f"{self.what} {str(self.target)!r} is in use by {who}; wait for it to finish or "
                                f"stop it (lock file {self.path})") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            _held_lock_fds.add(fd)
            return self
        raise RunLocked(f"cannot lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: a waiter re-checks the inode
        finally:
            _held_lock_fds.discard(self.fd)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
