"""`dsqsim presets`: the built-in workloads, machines, DRAM presets, number formats and policies, one line each."""

from __future__ import annotations

import argparse

from sim.commands.common import add_json_arg, print_json

KINDS = ("workloads", "machines", "drams", "formats", "policies")


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list built-in workloads, machines, DRAMs, number formats and policies",
                              description=__doc__)
    p.add_argument("--kind", choices=KINDS, action="append", default=None,
                   help="list only this kind (repeatable); default: all")
    add_json_arg(p)
    p.set_defaults(func=run)


def _workloads() -> list[tuple[str, str]]:
    from workloads import describe_spec, list_specs

    return [(name, describe_spec(name)) for name in list_specs()]


def _machines() -> list[tuple[str, str]]:
    from hwmodels.machine import list_machines

    out = []
    for m in list_machines():
        if isinstance(m, str):
            from hwmodels.machine import get_machine

            m = get_machine(m)
        desc = getattr(m, "description", "") or ""
        facts = f"{m.clock_ghz:g} GHz, DRAM {m.dram_bw_gbps:.4g} GB/s, peak {m.peak_macs_per_s(16, 16) / 1e12:.4g} " \
                f"TMAC/s at 16x16 bits"
        out.append((m.name, f"{desc} ({facts})" if desc else facts))
    return out


def _drams() -> list[tuple[str, str]]:
    from hwmodels.dram import list_drams

    out = []
    for d in list_drams():
        if isinstance(d, str):
            from hwmodels.dram import get_dram

            d = get_dram(d)
        out.append((d.name, f"{d.protocol}, peak {d.peak_gbps:.4g} GB/s, {d.request_bytes} B per request"))
    return out


def _formats() -> list[tuple[str, str]]:
    from sim.formats import list_formats

    out = []
    for f in list_formats():
        block = f", block {f.block_size}" if f.block_size else ""
        out.append((f.name, f"{f.family}, {f.bits_per_element:g} bits/element stored, "
                            f"{f.mult_bits}-bit multiplier operand{block}"))
    return out


def _policies() -> list[tuple[str, str]]:
    from sim.policy import list_policies

    return [(str(n), str(d)) for n, d in list_policies()]


def collect(kinds: list[str] | tuple[str, ...] = KINDS) -> dict[str, list[tuple[str, str]]]:
    """(name, one-line description) per preset, by kind."""
    listers = {"workloads": _workloads, "machines": _machines, "drams": _drams, "formats": _formats,
               "policies": _policies}
    return {k: listers[k]() for k in kinds}


def run(args: argparse.Namespace) -> int:
    found = collect(tuple(args.kind) if args.kind else KINDS)
    if args.json:
        print_json({k: [{"name": n, "description": d} for n, d in v] for k, v in found.items()})
        return 0
    for kind, items in found.items():
        print(f"{kind}:")
        width = max((len(n) for n, _ in items), default=0)
        for name, desc in items:
            print(f"  {name:<{width}}  {desc}")
    return 0
