"""The Pareto plot: accuracy against latency, point size = model size, the efficient frontier drawn."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from edgeface.utils import atomic_path  # noqa: E402

COLOURS = {"keras": "tab:gray", "tflite": "tab:blue", "onnx": "tab:orange", "saved_model": "tab:green",
           "trt": "tab:red"}


def _frontier(points, better_high: bool):
    """Points not beaten on both latency (lower) and the metric."""
    front, best = [], None
    for lat, value, label in sorted(points):
        if best is None or (value > best if better_high else value < best):
            front.append((lat, value))
            best = value
    return front


def _not_plotted(r) -> str | None:
    """Why a row gets no point, or None."""
    if r.detection_rate is not None:
        return "photo pipeline: scored on other images"
    if r.format == "keras":
        return "Keras: the training framework, not an app runtime; its latency would stretch the axis"
    if r.status != "ok" or not r.latency_mean_ms:
        return r.status if r.status != "ok" else "not timed"
    return None


def _plain_log_axis(ax) -> None:
    """Log-scale latency labelled 0.5, 1, 2, 5, 10 ... instead of overlapping 2x10^0 minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def pareto_plot(rows, path: Path, title: str) -> None:
    """Every row with a point, or named under the plot with the reason it has none."""
    ok = [r for r in rows if _not_plotted(r) is None]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    panels = ((axes[0], "gender_acc", "gender accuracy (%)", True, 100.0),
              (axes[1], "age_mae", "age MAE (years, lower is better)", False, 1.0))
    for ax, key, label, better_high, scale in panels:
        points = []
        for r in ok:
            value = getattr(r, key)
            if value is None:
                continue
            peer = r.model.startswith("peer:")
            ax.scatter(r.latency_mean_ms, value * scale, s=max(20.0, (r.size_kb or 1) ** 0.5 * 6),
                       c=COLOURS.get(r.format, "tab:purple"), marker="^" if peer else "o", alpha=0.6,
                       edgecolors="black")
            points.append((r.latency_mean_ms, value * scale, r))
            # a number at the point, the name in the key under the plot: long names never overlap
            ax.annotate(str(ok.index(r) + 1), (r.latency_mean_ms, value * scale), fontsize=8, fontweight="bold",
                        xytext=(5, 4), textcoords="offset points")
        if points:
            low, high = min(p[0] for p in points), max(p[0] for p in points)
            ax.set_xlim(low / 1.3, high * 1.3)
        points = [(lat, value, r.model) for lat, value, r in points]
        front = _frontier(points, better_high)
        if len(front) > 1:
            ax.plot(*zip(*front), "k--", lw=1, label="Pareto frontier")
        for fmt in sorted({r.format for r in ok}):  # a colour legend, one entry per format shown
            ax.scatter([], [], c=COLOURS.get(fmt, "tab:purple"), edgecolors="black", label=fmt)
        ax.legend(loc="best", fontsize=8)
        ax.set_xscale("log")
        _plain_log_axis(ax)
        ax.set_xlabel("latency per batch (ms, log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    key = [f"{i}  {r.model.removeprefix('peer:')} {r.format} {r.precision}" + (" (peer)" if r.model.startswith("peer:")
                                                                            else "") for i, r in enumerate(ok, 1)]
    left_out = [f"not plotted: {r.model} {r.format} {r.precision} ({_not_plotted(r)})" for r in rows if r not in ok]
    fig.suptitle(f"{title}; marker area ~ size on disk; triangles = peers; colour = format")
    lines = key + left_out
    fig.tight_layout(rect=(0, 0.02 + 0.028 * len(lines), 1, 1))
    if lines:  # every row is either a numbered point or named with the reason it has none
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7.5, va="bottom", family="monospace")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
