"""Pool workers die with their owner (kill -9, SIGTERM), and a run directory has one live owner (run in subprocesses,
every wait bounded)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sim.cli import main
from sim.lifecycle import RunLock, RunLocked

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see processes")

SCRIPT = """
import os, sys, threading, time
sys.path.insert(0, {repo!r})
MARK = {mark!r}

def slow_point(point):
    open(os.path.join(MARK, "w%d" % os.getpid()), "w").close()
    time.sleep(300)
    return {{}}

def slow_train(task, policy, steps, seed, out_dir=None, **kw):
    open(os.path.join(MARK, "w%d" % os.getpid()), "w").close()
    time.sleep(300)

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode.endswith("forkserver"):  # another thread running makes process_context pick forkserver
        threading.Thread(target=time.sleep, args=(300,), daemon=True).start()
    if mode.startswith("sweep"):
        from sim.sweep import run_sweep
        run_sweep("w", "h", "fp32", [1, 2, 3, 4], out=os.path.join(MARK, "s.parquet"), workers=2,
                  point_fn=slow_point, executor="dask" if mode == "sweep-dask" else "local")
    else:
        from sim.study import run_study
        run_study(out_dir=os.path.join(MARK, "study"), policies=("fp32", "bf16"), steps=2, workers=2,
                  train_fn=slow_train, workload="tiny-mt")
"""


def _alive(pid: int) -> bool:
    """Running (a zombie, never reaped by a container's init, counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_for(cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.mark.parametrize("mode, sig", [("sweep", signal.SIGKILL), ("sweep-forkserver", signal.SIGKILL),
                                       ("study", signal.SIGTERM), ("sweep-dask", signal.SIGKILL)])
def test_workers_die_with_their_owner(tmp_path, mode, sig):
    if mode == "sweep-dask":
        pytest.importorskip("distributed")
    script = tmp_path / "owner.py"
    script.write_text(SCRIPT.format(repo=str(REPO), mark=str(tmp_path)))
    owner = subprocess.Popen([sys.executable, str(script), mode], cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: len(list(tmp_path.glob("w*"))) == 2, 60), "workers did not start"
        workers = [int(p.name[1:]) for p in tmp_path.glob("w*")]
        assert owner.pid not in workers and all(_alive(w) for w in workers)
        owner.send_signal(sig)
        owner.wait(timeout=10)
        assert _wait_for(lambda: not any(_alive(w) for w in workers), 10), "workers outlived their owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=10)
        for p in tmp_path.glob("w*"):
            if _alive(int(p.name[1:])):
                os.kill(int(p.name[1:]), signal.SIGKILL)
    if mode == "study":  # no leftover process keeps the study directory locked
        with RunLock(tmp_path / "study"):
            pass


HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from sim.lifecycle import RunLock
lock = RunLock({target!r}, directory={directory!r}).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _hold(tmp_path: Path, target: Path, directory: bool) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(repo=str(REPO), target=str(target), directory=directory))
    holder = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_live_owner_blocks_a_second_study_and_a_dead_one_is_taken_over(tmp_path, capsys):
    out = tmp_path / "study"
    holder = _hold(tmp_path, out, True)
    try:
        code = main(["study", "--out", str(out), "--workload", "tiny-mt", "--steps", "2", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and str(holder.pid) in err[0] and "in use" in err[0]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert (out / ".dsqsim.lock").read_text().strip() == str(holder.pid)  # the stale lock file is still there
    with RunLock(out) as lock:  # ... and taken over
        assert (out / ".dsqsim.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RunLocked, match=str(os.getpid())):
            RunLock(out).acquire()  # held (by this process, through another descriptor)
    assert lock.fd is None and not (out / ".dsqsim.lock").exists()


def test_a_live_owner_blocks_a_second_sweep_on_the_same_output(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    holder = _hold(tmp_path, out, False)
    try:
        code = main(["sweep", "--workload", "tiny-mt", "--policies", "fp32", "--dram-bw-scale", "1", "--fidelity",
                     "roofline", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and str(holder.pid) in err[0]
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert main(["sweep", "--workload", "tiny-mt", "--policies", "fp32", "--dram-bw-scale", "1", "--fidelity",
                 "roofline", "--out", str(out), "--no-progress"]) == 0
    assert out.exists() and not out.with_name("s.parquet.lock").exists()


def test_lock_subprocess_message_is_one_line(tmp_path):
    out = tmp_path / "study"
    holder = _hold(tmp_path, out, True)
    try:
        proc = subprocess.run([sys.executable, "-m", "sim.cli", "study", "--out", str(out), "--workload", "tiny-mt",
                               "--no-progress"], capture_output=True, text=True, timeout=120, cwd=REPO)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and textwrap.shorten(proc.stderr, 200).startswith("dsqsim: error:")
