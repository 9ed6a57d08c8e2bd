"""Command for command against a DRAMSim3 executable the user built (skipped without one).

Set DSQSIM_DRAMSIM3_TRACE_MAIN to a DRAMSim3 `dramsim3main` that writes its per-channel command traces
(`<output>/dramsim3ch_<N>cmd.trace`, DRAMSim3's CMD_TRACE option), and DSQSIM_DRAMSIM3_CONFIGS to its `configs/`
directory if that is not beside the executable's build directory. Each case feeds the same addresses to both
through DRAMSim3's own trace front end (one transaction per clock: the W=1 reference methodology) and requires the
same commands — cycle, channel, bank and type of every ACT, PRE, RD, WR and REF — up to our last completion.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hwmodels.dram import get_dram
from hwmodels.dram.bench import pattern_addresses
from hwmodels.dram.compiled import make_system
from hwmodels.dram.timing import ACT, PRE, RD, REF, WR

EXE = os.environ.get("DSQSIM_DRAMSIM3_TRACE_MAIN")
pytestmark = pytest.mark.skipif(not EXE, reason="DSQSIM_DRAMSIM3_TRACE_MAIN not set (a user-built DRAMSim3)")
NAMES = {"activate": ACT, "precharge": PRE, "read": RD, "write": WR, "refresh": REF}
REQUESTS = 20_000


def _ours(spec, addrs: list[int], writes: list[bool]) -> tuple[list, int]:
    system = make_system(spec, issue_width=1)
    system.log_commands()
    for a, w in zip(addrs, writes, strict=True):
        system.submit(a, w, 0, 0)
    system.run_until_idle()
    # a refresh is a rank's command: compare it by rank
    log = [(c, ch, ("rank", b // spec.banks) if t == REF else b, t) for c, ch, b, t in system.command_log()]
    return log, system.last_done_cycle()


def _dramsim3(spec, addrs: list[int], writes: list[bool], cycles: int, tmp: Path) -> list:
    configs = Path(os.environ.get("DSQSIM_DRAMSIM3_CONFIGS") or Path(EXE).resolve().parent.parent / "configs")
    trace = tmp / "trace.txt"
    trace.write_text("".join(f"{a:#x} {'WRITE' if w else 'READ'} 0\n" for a, w in zip(addrs, writes, strict=True)))
    subprocess.run([EXE, str(configs / f"{spec.name}.ini"), "-c", str(cycles), "-t", str(trace), "-o", str(tmp)],
                   check=True, stdout=subprocess.DEVNULL)
    log = []
    for path in tmp.glob("*cmd.trace"):
        ch = int(re.search(r"ch_(\d+)cmd\.trace$", path.name).group(1))  # refresh-side lines print channel -1
        for line in path.read_text().splitlines():
            f = line.split()
            clk, typ, rank, bg, bank = int(f[0]), NAMES[f[1]], int(f[3]), int(f[4]), int(f[5])
            b = ("rank", rank) if typ == REF else (rank * spec.bankgroups + bg) * spec.banks_per_group + bank
            log.append((clk, ch, b, typ))
    log.sort(key=lambda e: (e[0], e[1]))  # stable: one channel's commands of a cycle keep their order
    return log


@pytest.mark.parametrize("pattern", ["seq_read", "seq_write", "mix", "rand_read"])
@pytest.mark.parametrize("dram", ["DDR4_8Gb_x8_3200", "HBM2_8Gb_x128", "GDDR6_8Gb_x16", "LPDDR4_8Gb_x16_2400"])
def test_same_command_trace_as_dramsim3(dram: str, pattern: str, tmp_path: Path) -> None:
    spec = get_dram(dram)
    a, w = pattern_addresses(pattern, REQUESTS, spec.request_bytes)
    addrs, writes = a.tolist(), w.tolist()
    ours, end = _ours(spec, addrs, writes)
    ours = [e for e in ours if e[0] <= end]  # buffered writes may still be written after the last acknowledgement
    theirs = [e for e in _dramsim3(spec, addrs, writes, end + 1, tmp_path) if e[0] <= end]
    assert len(ours) > REQUESTS
    assert ours == theirs
