"""PNG plots of ``mxsf compare`` rows (matplotlib, Agg canvas, no pyplot state).

Each ``plot_*`` function takes the rows of :func:`mxsf.synth.compare.compare_rows`
and a path, and writes one PNG (the format is fixed, so the path may end in ``.tmp``):

- :func:`plot_area_per_format`: MX PE area per element format (comb/seq stacked), with
  the BF16 PE (scaled to the same MACs/cycle) and the MXFP8 E4M3 PE as reference lines;
- :func:`plot_area_per_mac`: GE per MAC/cycle per format, BF16 PE included;
- :func:`plot_area_vs_array`: area and GE/MAC against array size (designs with rows/cols);
- :func:`plot_pareto`: GE/MAC against SQNR (1D blocks and tiles), one point per format.

:func:`compare_plots` lists the plots that apply to a set of rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "compare_plots",
    "plot_area_per_format",
    "plot_area_per_mac",
    "plot_area_vs_array",
    "plot_energy_breakdown",
    "plot_pareto",
    "plot_pareto_energy",
    "plot_pj_per_mac",
]

Row = Mapping[str, Any]
_DPI = 120
_COMB, _SEQ, _BF16, _E4M3 = "#4c72b0", "#dd8452", "#c44e52", "#55a868"


def _figure(width: float = 8.0, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike[str]) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")


def _references(rows: Sequence[Row]) -> tuple[Row | None, Row | None]:
    bf16 = next((r for r in rows if r.get("reference") == "bf16"), None)
    e4m3 = next((r for r in rows if r.get("reference") not in (None, "bf16")), None)
    return bf16, e4m3


def _pe_rows(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r["design"] == "pe"]


def _params_text(row: Row) -> str:
    return " ".join(f"{k}={v}" for k, v in row["params"].items())


def plot_area_per_format(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """Bars of MX PE area per format (comb + seq) with BF16 and MXFP8 E4M3 lines."""
    pes = _pe_rows(rows)
    bf16, e4m3 = _references(rows)
    fig = _figure()
    ax = fig.add_subplot()
    names = [r["format"] for r in pes]
    xs = range(len(pes))
    ax.bar(xs, [r["comb_ge"] for r in pes], color=_COMB, label="combinational")
    ax.bar(xs, [r["seq_ge"] for r in pes], bottom=[r["comb_ge"] for r in pes], color=_SEQ,
           label="sequential")
    for x, r in zip(xs, pes):
        ax.annotate(f"{r['area_ge']:.0f}", (x, r["area_ge"]), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")
    macs = pes[0]["macs_per_cycle"] if pes else 0
    if bf16 is not None and bf16.get("ge_per_mac") and macs:
        scale = macs / bf16["macs_per_cycle"]
        label = "BF16 PE" + (f" x{scale:g} (same MACs/cycle)" if scale != 1 else "")
        ax.axhline(bf16["ge_per_mac"] * macs, color=_BF16, linestyle="--", label=label)
    if e4m3 is not None:
        ax.axhline(e4m3["area_ge"], color=_E4M3, linestyle=":", label="MXFP8 E4M3 PE")
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylabel("area (NAND2 GE)")
    title = "MX PE area per element format"
    if pes:
        title += f" ({_params_text(pes[0])})"
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_area_per_mac(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """Bars of GE per MAC/cycle per format, BF16 PE first, with reference lines."""
    bf16, e4m3 = _references(rows)
    bars = ([bf16] if bf16 is not None else []) + [r for r in _pe_rows(rows) if r.get("ge_per_mac")]
    fig = _figure()
    ax = fig.add_subplot()
    xs = range(len(bars))
    colors = [_BF16 if r is bf16 else _COMB for r in bars]
    ax.bar(xs, [r["ge_per_mac"] for r in bars], color=colors)
    for x, r in zip(xs, bars):
        ax.annotate(f"{r['ge_per_mac']:.0f}", (x, r["ge_per_mac"]), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")
    if bf16 is not None:
        ax.axhline(bf16["ge_per_mac"], color=_BF16, linestyle="--",
                   label=f"BF16 PE ({bf16['ge_per_mac']:.0f} GE/MAC)")
    if e4m3 is not None:
        ax.axhline(e4m3["ge_per_mac"], color=_E4M3, linestyle=":",
                   label=f"MXFP8 E4M3 PE ({e4m3['ge_per_mac']:.0f} GE/MAC)")
    ax.set_xticks(list(xs), [r["format"] for r in bars], rotation=30, ha="right")
    ax.set_ylabel("area per MAC/cycle (GE)")
    ax.set_title("Area per MAC per element format")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _array_rows(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if "rows" in r["params"] and "cols" in r["params"]]


def plot_area_vs_array(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """Area and GE/MAC against array size (rows x cols), one line per design and format."""
    arrays = _array_rows(rows)
    fig = _figure(10.0, 4.8)
    ax_area, ax_mac = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    series: dict[tuple[str, str], list[Row]] = {}
    for r in arrays:
        series.setdefault((r["design"], r["format"] or "-"), []).append(r)
    sizes = sorted({(r["params"]["rows"], r["params"]["cols"]) for r in arrays},
                   key=lambda s: (s[0] * s[1], s))
    for (design, fmt), items in series.items():
        items = sorted(items, key=lambda r: r["params"]["rows"] * r["params"]["cols"])
        xs = [r["params"]["rows"] * r["params"]["cols"] for r in items]
        ax_area.plot(xs, [r["area_ge"] for r in items], marker="o", label=f"{design} {fmt}")
        if any(r.get("ge_per_mac") for r in items):
            ax_mac.plot(xs, [r.get("ge_per_mac") for r in items], marker="o",
                        label=f"{design} {fmt}")
    bf16, e4m3 = _references(rows)
    if bf16 is not None:
        ax_mac.axhline(bf16["ge_per_mac"], color=_BF16, linestyle="--", label="BF16 PE")
    if e4m3 is not None:
        ax_mac.axhline(e4m3["ge_per_mac"], color=_E4M3, linestyle=":", label="MXFP8 E4M3 PE")
    ticks = [r * c for r, c in sizes]
    labels = [f"{r}x{c}" for r, c in sizes]
    for ax in (ax_area, ax_mac):
        if ticks:
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, labels)
            ax.minorticks_off()
        ax.set_xlabel("array size (rows x cols)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_area.set_yscale("log")
    ax_area.set_ylabel("area (NAND2 GE)")
    ax_area.set_title("Area against array size")
    ax_mac.set_ylabel("area per MAC/cycle (GE)")
    ax_mac.set_title("Area per MAC against array size")
    _save(fig, path)


def _pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other beats on both axes (higher SQNR x, lower GE/MAC y), by x."""
    front = []
    for x, y in sorted(points, key=lambda p: (-p[0], p[1])):
        if not front or y < front[-1][1]:
            front.append((x, y))
    return sorted(front)


def plot_pareto(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """GE/MAC (y) against SQNR (x): 1D-block and tile markers per format, labelled."""
    bf16, _ = _references(rows)
    points = ([bf16] if bf16 is not None else []) + _pe_rows(rows)
    points = [r for r in points if r.get("ge_per_mac") and r.get("sqnr_1d_db") is not None
              and r.get("sqnr_tile_db") is not None]
    fig = _figure(8.0, 5.6)
    ax = fig.add_subplot()
    for r in points:
        y = r["ge_per_mac"]
        ax.plot([r["sqnr_1d_db"], r["sqnr_tile_db"]], [y, y], color="0.75", linewidth=1, zorder=1)
        ax.annotate(r["format"], (max(r["sqnr_1d_db"], r["sqnr_tile_db"]), y), fontsize=8,
                    xytext=(5, 3), textcoords="offset points")
    ax.scatter([r["sqnr_1d_db"] for r in points], [r["ge_per_mac"] for r in points],
               marker="o", color=_COMB, label="1D blocks of 32", zorder=2)
    ax.scatter([r["sqnr_tile_db"] for r in points], [r["ge_per_mac"] for r in points],
               marker="s", color=_SEQ, label="32x32 tiles", zorder=2)
    for key, color in (("sqnr_1d_db", _COMB), ("sqnr_tile_db", _SEQ)):
        front = _pareto_front([(r[key], r["ge_per_mac"]) for r in points])
        if len(front) > 1:
            ax.step([p[0] for p in front], [p[1] for p in front], where="pre", color=color,
                    linestyle="--", linewidth=0.8, alpha=0.7)
    ax.set_xlabel("SQNR (dB), mean over the default tensor distributions")
    ax.set_ylabel("area per MAC/cycle (GE)")
    ax.set_title("Area against accuracy (lower right is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def _pj(row: Row) -> float | None:
    return row.get("pj_per_mac") or row.get("pj_per_mac_vectorless")


def plot_pj_per_mac(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """pJ per MAC per design: from gate-level activity and vectorless, side by side."""
    items = [r for r in rows if r.get("macs_per_cycle") and r.get("pj_per_mac_vectorless")]
    fig = _figure(max(8.0, 0.7 * len(items) + 2), 4.8)
    ax = fig.add_subplot()
    xs = list(range(len(items)))
    labels = [r["format"] if r["design"] == "pe" else
              f"{r['design']}\n{r['format'] or ''} {_params_text(r)}".strip() for r in items]
    ax.bar([x - 0.2 for x in xs], [r.get("pj_per_mac") or 0 for r in items], width=0.4,
           color=_COMB, label="gate-level activity (real data)")
    ax.bar([x + 0.2 for x in xs], [r["pj_per_mac_vectorless"] for r in items], width=0.4,
           color=_SEQ, label="vectorless (inputs 0.1/cycle)")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("energy per MAC (pJ)")
    ax.set_title("Energy per multiply-accumulate")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def plot_energy_breakdown(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """Per design, power split into sequential/combinational x internal/switching."""
    items = [r for r in rows if r.get("energy_groups_mw")]
    fig = _figure(max(8.0, 0.7 * len(items) + 2), 4.8)
    ax = fig.add_subplot()
    xs = list(range(len(items)))
    bottom = [0.0] * len(items)
    parts = (("sequential", 0, "seq internal", "#dd8452"), ("sequential", 1, "seq switching", "#f2b58c"),
             ("combinational", 0, "comb internal", "#4c72b0"),
             ("combinational", 1, "comb switching", "#8fb0dc"))
    for group, idx, label, color in parts:
        vals = []
        for r in items:
            g = r["energy_groups_mw"].get(group)
            macs = r.get("macs_per_cycle") or 0
            util = r.get("utilisation") or 1.0
            clock = r.get("clock_ns") or 0
            # mW x ns = pJ per cycle; per MAC when the design has MACs.
            vals.append((g[idx] * clock / (macs * util)) if g and macs else 0.0)
        ax.bar(xs, vals, bottom=bottom, color=color, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(xs)
    ax.set_xticklabels([r["format"] if r["design"] == "pe" else r["design"] for r in items],
                       fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("energy per MAC (pJ)")
    ax.set_title("Energy breakdown (activity where simulated, else vectorless)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def plot_pareto_energy(rows: Sequence[Row], path: str | os.PathLike[str]) -> None:
    """pJ/MAC (y) against SQNR (x), one point per PE format and the BF16 PE."""
    bf16, _ = _references(rows)
    points = ([bf16] if bf16 is not None else []) + _pe_rows(rows)
    points = [r for r in points if _pj(r) and r.get("sqnr_1d_db") is not None]
    fig = _figure(8.0, 5.6)
    ax = fig.add_subplot()
    for key, color, label in (("sqnr_1d_db", _COMB, "1D blocks of 32"),
                              ("sqnr_tile_db", _SEQ, "32x32 tiles")):
        pts = [(r[key], _pj(r), r["format"]) for r in points if r.get(key) is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, label=label)
        for x, y, name in pts:
            ax.annotate(name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front = _pareto_front([(p[0], p[1]) for p in pts])
        if len(front) > 1:
            ax.step([p[0] for p in front], [p[1] for p in front], where="pre", color=color,
                    linestyle="--", linewidth=0.8, alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel("SQNR (dB), mean over the default tensor distributions")
    ax.set_ylabel("energy per MAC (pJ)")
    ax.set_title("Energy against accuracy (lower right is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def compare_plots(rows: Sequence[Row]) -> list[tuple[str, Callable[[Sequence[Row], Any], None]]]:
    """(file name, plot function) of every plot that applies to ``rows``."""
    plots: list[tuple[str, Callable[[Sequence[Row], Any], None]]] = [
        ("area_per_format.png", plot_area_per_format),
        ("area_per_mac.png", plot_area_per_mac),
    ]
    if any(r.get("macs_per_cycle") for r in _array_rows(rows)):
        plots.append(("area_vs_array.png", plot_area_vs_array))
    if any(r.get("sqnr_1d_db") is not None for r in rows):
        plots.append(("pareto.png", plot_pareto))
    if any(r.get("pj_per_mac_vectorless") for r in rows):
        plots.append(("pj_per_mac.png", plot_pj_per_mac))
        plots.append(("energy_breakdown.png", plot_energy_breakdown))
        if any(r.get("sqnr_1d_db") is not None for r in rows):
            plots.append(("pareto_energy.png", plot_pareto_energy))
    return plots
