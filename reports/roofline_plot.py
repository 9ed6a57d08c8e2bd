"""Roofline plot of a `sim.roofline.RooflineResult`: log-log, one roof per operand precision plus the vector roof,
ridge points marked, each op a marker sized by its share of the step's lower-bound time and coloured by phase.

Headless (Agg). Files are written to a temporary name in the target folder, then renamed, so a failed run leaves
nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from reports.files import plot_paths, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASE_COLOURS = {"forward": "tab:blue", "loss": "tab:purple", "backward": "tab:orange", "optimizer": "tab:green"}


def roofline_figure(result, title: str | None = None) -> Figure:
    """A figure for `result` (anything with `.ops`, `.roofs`, `.dram_bw_bytes_per_s` like RooflineResult)."""
    # matplotlib is imported here, not at module level, so that checking a plot path stays cheap.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    ops = result.ops
    ops = ops[(ops["dram_bytes"] > 0) & (ops["time_s"] > 0) & np.isfinite(ops["intensity_ops_per_byte"])]
    bw = result.dram_bw_bytes_per_s
    fig, ax = plt.subplots(figsize=(11, 6), dpi=120)
    x_lo = min([ops["intensity_ops_per_byte"].min() / 3 if len(ops) else 0.1]
               + [r.ridge_ops_per_byte / 30 for r in result.roofs] + [0.1])
    x_hi = max([ops["intensity_ops_per_byte"].max() * 3 if len(ops) else 10]
               + [r.ridge_ops_per_byte * 30 for r in result.roofs])
    xs = np.logspace(np.log10(x_lo), np.log10(x_hi), 200)
    mac_roofs = sorted((r for r in result.roofs if r.unit == "MAC"), key=lambda r: r.peak_ops_per_s)
    n_mac = max(len(mac_roofs), 1)
    roof_colours = plt.get_cmap("Greys")(np.linspace(0.95 - 0.5 * (n_mac > 1), 0.95, n_mac))  # highest roof darkest
    styles = [(r, c, "-") for r, c in zip(mac_roofs, roof_colours, strict=False)]
    styles += [(r, "tab:red", ":") for r in result.roofs if r.unit != "MAC"]
    roof_handles = []
    for roof, colour, style in styles:
        (line,) = ax.plot(xs, np.minimum(roof.peak_ops_per_s, bw * xs), style, color=colour, lw=1.8,
                          label=f"{roof.label} roof: {roof.peak_ops_per_s / 1e12:.3g} T{roof.unit}/s, "
                                f"ridge {roof.ridge_ops_per_byte:.3g} {roof.unit}/B")
        ax.plot([roof.ridge_ops_per_byte], [roof.peak_ops_per_s], "D", color=colour, ms=6)
        roof_handles.append(line)
    share = ops["time_share"].to_numpy() if len(ops) else np.array([])
    sizes = 12 + 600 * share / (share.max() if share.size and share.max() > 0 else 1)
    for phase, colour in PHASE_COLOURS.items():
        sel = (ops["phase"] == phase).to_numpy()
        for is_gemm, marker in ((True, "o"), (False, "s")):
            m = sel & ((ops["macs"] > 0).to_numpy() == is_gemm)
            if m.any():
                ax.scatter(ops["intensity_ops_per_byte"].to_numpy()[m], ops["attainable_ops_per_s"].to_numpy()[m],
                           s=sizes[m], c=colour, marker=marker, alpha=0.55, edgecolors="black", linewidths=0.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity [MAC/byte for GEMMs, op/byte for vector ops]")
    ax.set_ylabel("attained rate [MAC/s for GEMMs, op/s for vector ops]")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title or f"{result.workload} on {result.machine}, {result.config_label}: "
                          f"step >= {result.time_lower_bound_s * 1e3:.3g} ms", fontsize=10)
    phase_handles = [Line2D([], [], marker="o", ls="", color=c, alpha=0.7, label=p)
                     for p, c in PHASE_COLOURS.items() if (ops["phase"] == p).any()]
    shape_handles = [Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="GEMM / BMM"),
                     Line2D([], [], marker="s", ls="", mfc="white", mec="black", label="vector op"),
                     Line2D([], [], marker="D", ls="", color="grey", label="ridge point")]
    ax.legend(handles=roof_handles + phase_handles + shape_handles, fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title="marker area ~ share of step time",
              title_fontsize=8)
    fig.tight_layout()
    return fig


def save_roofline_plot(result, path: str | os.PathLike, title: str | None = None) -> list[Path]:
    """Write the roofline plot to `path` (see `plot_paths`); returns the files written."""
    plot_paths(path)  # a bad suffix or folder fails before the drawing
    return save_figure(roofline_figure(result, title), path)
