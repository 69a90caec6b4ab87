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


def pareto_plot(rows, path: Path, title: str) -> None:
    ok = [r for r in rows if r.status == "ok" and r.latency_mean_ms]
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
            # alternate the label above and below its point so neighbours' labels do not sit on each other
            ax.annotate(f"{r.model.removeprefix('peer:')} {r.format} {r.precision}" if not peer
                        else r.model.removeprefix("peer:"), (r.latency_mean_ms, value * scale), fontsize=7,
                        xytext=(4, 3 if len(points) % 2 == 0 else -9), textcoords="offset points")
            points.append((r.latency_mean_ms, value * scale, r.model))
        front = _frontier(points, better_high)
        if len(front) > 1:
            ax.plot(*zip(*front), "k--", lw=1, label="Pareto frontier")
        for fmt in sorted({r.format for r in ok}):  # a colour legend, one entry per format shown
            ax.scatter([], [], c=COLOURS.get(fmt, "tab:purple"), edgecolors="black", label=fmt)
        ax.legend(loc="best", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("latency per batch (ms, log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    failed = [f"{r.model} {r.format} {r.precision} ({r.status})" for r in rows if r not in ok]
    fig.suptitle(f"{title}; marker area ~ size on disk; triangles = peers; colour = format")
    if failed:  # rows without a point are named, not dropped silently
        fig.text(0.01, 0.01, "not plotted: " + "; ".join(failed), fontsize=7, wrap=True)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
