"""`dsqsim gemm`: cycles, utilisation and SRAM/DRAM traffic of one GEMM A[M,K] x B[K,N] on a systolic array.

Timing is SCALE-Sim 3.0.0's, exactly (fold-level, no per-cycle simulation). With --hw the array, dataflow, SRAM and
precision law come from a machine (a GPU-like machine uses its throughput model); otherwise give --rows and --cols.
"""

from __future__ import annotations

import argparse

from sim.commands.common import add_json_arg, positive_float, positive_int, print_json

KEYS = ("compute_cycles", "utilization", "sram_reads", "sram_writes", "dram_read_bytes", "dram_write_bytes", "wall_s")


def register(subparsers) -> None:
    p = subparsers.add_parser("gemm", help="time one GEMM on a systolic array (SCALE-Sim-exact fold model)",
                              description=__doc__)
    p.add_argument("--hw", default=None, metavar="H", help="take array, SRAM and precision law from this machine")
    p.add_argument("--rows", type=positive_int, default=None, help="array rows R")
    p.add_argument("--cols", type=positive_int, default=None, help="array columns C")
    p.add_argument("--dataflow", default=None, metavar="DF", help="os, ws or is (default os, or the machine's)")
    p.add_argument("--m", type=positive_int, required=True, help="rows of A and of the output")
    p.add_argument("--k", type=positive_int, required=True, help="reduction dimension")
    p.add_argument("--n", type=positive_int, required=True, help="columns of B and of the output")
    p.add_argument("--bits-a", type=positive_int, default=16, help="operand width of A in bits (default %(default)s)")
    p.add_argument("--bits-b", type=positive_int, default=16, help="operand width of B in bits (default %(default)s)")
    p.add_argument("--sram-kb", type=positive_float, default=None,
                   help="size of each double-buffered SRAM (A, B, output) in kB; default unbounded, or with --hw "
                        "the machine's total")
    p.add_argument("--native-bits", type=positive_int, default=16,
                   help="native MAC width of the precision-scalable law (default %(default)s; without --hw)")
    p.add_argument("--fixed-precision", action="store_true",
                   help="one product per MAC per cycle at any width up to native (no precision scaling): "
                        "SCALE-Sim's fixed-precision array (also with --hw)")
    add_json_arg(p)
    p.set_defaults(func=run)


def describe_law(law, bits_a: int, bits_b: int) -> str:
    """One line naming the MAC precision law used and how to get SCALE-Sim's fixed-precision array instead."""
    if law is None:
        return "precision law: none (one product per MAC per cycle at any width: SCALE-Sim's fixed-precision array)"
    per_mac = law.products_per_mac(bits_a, bits_b)
    rate = f"{float(per_mac):g} product{'' if per_mac == 1 else 's'} per MAC per cycle at {bits_a}x{bits_b} bits"
    if not law.scalable:
        return f"precision law: fixed {law.native_bits}-bit MACs, {rate} (SCALE-Sim's fixed-precision array)"
    fixed = law.__class__(law.native_bits, law.min_bits, scalable=False, pow2=law.pow2)
    ratio = per_mac / fixed.products_per_mac(bits_a, bits_b)
    vs = "the same cycles as" if ratio == 1 else f"{float(ratio):g}x the MAC rate of"
    return (f"precision law: precision-scalable {law.native_bits}-bit MACs (down to {law.min_bits}-bit slices), "
            f"{rate}: {vs} SCALE-Sim's fixed-precision array (--fixed-precision)")


def run(args: argparse.Namespace) -> int:
    import time

    from hwmodels.compute import PrecisionLaw, systolic_gemm
    from sim.limits import check_gemm, check_overrides

    t0 = time.perf_counter()
    if args.hw is not None:
        from hwmodels.machine import get_machine

        machine = get_machine(args.hw)
        array = (args.rows, args.cols) if args.rows or args.cols else None
        if array is not None and None in array:
            raise ValueError("give both --rows and --cols to resize the machine's array")
        if machine.array is None and (args.fixed_precision or args.dataflow):
            raise ValueError(f"machine {machine.name!r} is a throughput model: --dataflow and --fixed-precision "
                             "apply to systolic arrays only")
        check_overrides(array=array, sram_kb=args.sram_kb)
        machine = machine.with_overrides(array=array, sram_kb=args.sram_kb, dataflow=args.dataflow)
        check_gemm(args.m, args.k, args.n, (args.bits_a, args.bits_b),
                   (machine.array.rows, machine.array.cols) if machine.array is not None else None)
        if args.fixed_precision:
            import dataclasses

            law = dataclasses.replace(machine.array.law, scalable=False)
            machine = dataclasses.replace(machine, array=dataclasses.replace(machine.array, law=law))
        result = machine.gemm(args.m, args.k, args.n, args.bits_a, args.bits_b)
        if machine.array is not None:
            a = machine.array
            label = f"{machine.name}: {a.rows}x{a.cols} {a.dataflow} array"
            law_line = describe_law(a.law, args.bits_a, args.bits_b)
        else:
            label = f"{machine.name} (throughput model)"
            law_line = "throughput model: the machine's peak MAC rate at these widths, no systolic array"
        if machine.overrides:
            label += " (changed: " + ", ".join(k for k, _ in machine.overrides) + ")"
    else:
        if args.rows is None or args.cols is None:
            raise ValueError("give --rows and --cols (or --hw MACHINE)")
        check_overrides(sram_kb=args.sram_kb)
        check_gemm(args.m, args.k, args.n, (args.bits_a, args.bits_b, args.native_bits), (args.rows, args.cols))
        law = PrecisionLaw(native_bits=args.native_bits, min_bits=min(2, args.native_bits),
                           scalable=not args.fixed_precision)
        result = systolic_gemm(args.rows, args.cols, args.dataflow or "os", args.m, args.k, args.n,
                               args.bits_a, args.bits_b, args.sram_kb, law=law)
        label = f"{args.rows}x{args.cols} {args.dataflow or 'os'}"
        law_line = describe_law(law, args.bits_a, args.bits_b)
    wall_s = time.perf_counter() - t0
    out = {**{k: getattr(result, k) for k in KEYS if k != "wall_s"}, "wall_s": wall_s}
    if args.json:
        print_json(out)  # the figures only (a stable schema); the text output names the array and the law
        return 0
    print(f"GEMM {args.m}x{args.k}x{args.n} ({args.bits_a}x{args.bits_b} bits) on {label}")
    print(f"  {law_line}")
    for key, value in out.items():
        text = f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
        print(f"  {key:<18}{text}")
    return 0
