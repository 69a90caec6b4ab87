"""What the benchmark reports: the terminal lines, the markdown table, ratios to the reference row and the
pick within budgets."""
from __future__ import annotations

import collections

from edgeface.benchmark.rows import Row

def reference_row(rows, compiled: bool = False):
    """The row others are compared with: our first ok row, preferring a compiled runtime (LiteRT, ONNX Runtime,
    TensorRT) whose latency is not Python-call overhead, as the Keras row's is."""
    ours = [r for r in rows if r.status == "ok" and not r.model.startswith("peer:")]
    fast = [r for r in ours if r.format in ("tflite", "onnx", "trt")] if compiled else []
    return (fast or ours or [None])[0]


def ratios(rows, reference) -> None:
    if reference is None:
        return
    for r in rows:
        if r.latency_mean_ms:
            r.latency_ratio = r.latency_mean_ms / reference.latency_mean_ms
        if r.size_kb:
            r.size_ratio = r.size_kb / reference.size_kb


def _exclusion(r: Row, needs: list, budget_ms, budget_kb) -> str | None:
    """Why a row cannot be the pick, or None."""
    if r.detection_rate is not None:
        return "photo pipeline"  # scored on other images
    if r.status != "ok":
        return "not ok"
    if not all(getattr(r, m) is not None for m in needs):
        return "lacks a task"
    if budget_ms is not None and (r.latency_mean_ms or 1e18) > budget_ms:
        return "over the latency budget"
    if budget_kb is not None and (r.size_kb or 1e18) > budget_kb:
        return "over the size budget"
    return None


def pick_best(rows, budget_ms: float | None = None, budget_kb: float | None = None) -> tuple[Row | None, str]:
    """The most accurate ok row (gender accuracy, then lower age MAE) within the latency and size budgets, among
    the rows that answer every task the reference row answers (a gender-only peer cannot replace a gender and
    age model); and why the others were left out (e.g. "3 lack a task, 2 over the size budget")."""
    reference = reference_row(rows)
    needs = [m for m in ("gender_acc", "age_mae") if reference is None or getattr(reference, m) is not None]
    why = [_exclusion(r, needs, budget_ms, budget_kb) for r in rows]
    fits = [r for r, reason in zip(rows, why) if reason is None]
    left_out = ", ".join(f"{n} {reason}" for reason, n in collections.Counter(r for r in why if r).items())
    best = max(fits, key=lambda r: (r.gender_acc if r.gender_acc is not None else 0.0,
                                    -(r.age_mae if r.age_mae is not None else 1e9)), default=None)
    return best, f"left out of {len(rows)} rows: {left_out}" if left_out else f"all {len(rows)} rows considered"


def format_table(rows) -> str:
    """The final figures (every timing round, every row) as the terminal shows them."""
    return "\n".join(format_row(r) for r in rows)


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def format_row(r: Row) -> str:
    acc = "acc      —" if r.gender_acc is None else f"acc {100 * r.gender_acc:6.2f}%"
    line = (f"{r.model:28} {r.format:11} {r.precision:8} {r.status:17} {_fmt(r.threads, 'd')}t "
            f"{_fmt(r.size_kb, '9.0f')} KB "
            f"{acc} MAE {_fmt(r.age_mae, '5.2f')} "
            f"{_fmt(r.latency_mean_ms, '8.2f')} ms (p50 {_fmt(r.latency_p50_ms, '.2f')}, "
            f"p90 {_fmt(r.latency_p90_ms, '.2f')}) load {_fmt(r.load_ms, '.0f')} ms, "
            f"+{_fmt(r.model_memory_mb, '.1f')} MB")
    return line + (f"  [{r.error}]" if r.error else "")


def _interval(metric: str, delta, low, high, scale: float) -> str:
    """'+0.12 [-0.20, +0.45] noise' with the paired verdict (real / noise / negligible, edgeface.stats)."""
    if delta is None:
        return "—"
    from edgeface.stats import interval_text, verdict

    return f"{interval_text(delta, low, high, scale)} {verdict(metric, delta, low, high)}"


def markdown_table(rows) -> str:
    head = ("| model | format | precision | status | size KB | gzip KB | gender acc | balanced | age MAE | "
            "Δ acc vs ref, pt [95% CI] | Δ MAE vs ref [95% CI] | faces found | "
            "latency ms (mean / p50 / p90) | drift | img/s | cold start ms | model MB | probe peak MB | latency vs ref | "
            "size vs ref | accelerators |")
    lines = [head, "|" + "---|" * head.count(" |")]
    for r in rows:
        acc = None if r.gender_acc is None else 100 * r.gender_acc
        bal = None if r.balanced_acc is None else 100 * r.balanced_acc
        status = r.status if not r.error else f"{r.status}: {r.error}".replace("|", "\\|")
        d_acc = _interval("gender_accuracy", r.gender_acc_delta, r.gender_acc_delta_low, r.gender_acc_delta_high, 100)
        d_mae = _interval("age_mae", r.age_mae_delta, r.age_mae_delta_low, r.age_mae_delta_high, 1)
        lines.append(f"| {r.model} | {r.format} | {r.precision} | {status} | {_fmt(r.size_kb, '.0f')} | "
                     f"{_fmt(r.gzip_kb, '.0f')} | {_fmt(acc, '.2f')} | {_fmt(bal, '.2f')} | {_fmt(r.age_mae, '.2f')} | "
                     f"{d_acc} | {d_mae} | "
                     f"{'—' if r.detection_rate is None else f'{100 * r.detection_rate:.1f}%'} | "
                     f"{_fmt(r.latency_mean_ms, '.2f')} / {_fmt(r.latency_p50_ms, '.2f')} / "
                     f"{_fmt(r.latency_p90_ms, '.2f')} | {_fmt(r.latency_drift, '.0%')} | "
                     f"{_fmt(r.throughput_ips, '.0f')} | "
                     f"{_fmt(r.load_ms, '.0f')} | {_fmt(r.model_memory_mb, '.1f')} | "
                     f"{_fmt(r.peak_memory_mb, '.0f')} | {_fmt(r.latency_ratio, '.2f')} | "
                     f"{_fmt(r.size_ratio, '.2f')} | {r.accelerators or '—'} |")
    return "\n".join(lines) + "\n"
