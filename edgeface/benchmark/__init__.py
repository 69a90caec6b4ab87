"""`benchmark(...)`: every exported variant of our models (and peers) on the same images, one table.

Rows never abort the run: each gets a status (ok / export failed / validation failed) with its error. Accuracy
is scored in this process; latency and peak memory in a fresh process per row (fixed threads, warm-up,
preprocessed input in memory), or on an Android device over adb for TFLite rows. Every row's model is a
BasePredictor (ours, a peer, an ensemble) opened by `open_model`, in this process and in the probe alike.

A facade: `rows` (the Row schema and Settings), `sources` (what is measured, the images), `measure` (one row:
make, size, score, first timing; paired deltas), `timing` (probe rounds, thread sweep, host), `pipeline`
(`--photos` rows), `report` (terminal lines, markdown, ratios, pick) and `suite` (the run that ties them).
"""
from edgeface.benchmark.report import format_row, format_table, markdown_table, pick_best
from edgeface.benchmark.rows import COLUMNS, Row, Settings
from edgeface.benchmark.sources import scoring_records
from edgeface.benchmark.suite import benchmark
from edgeface.benchmark.timing import host

__all__ = ["COLUMNS", "Row", "Settings", "benchmark", "format_row", "format_table", "host", "markdown_table",
           "pick_best", "scoring_records"]
