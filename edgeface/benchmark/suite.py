"""`benchmark(sources, settings, output)`: every row measured, timed in interleaved rounds, compared with the
reference and written out (benchmark.json / .csv, table.md, pareto.png)."""
from __future__ import annotations

import csv
import dataclasses
import datetime
import logging
from pathlib import Path

from edgeface.benchmark.measure import measure, paired
from edgeface.benchmark.pipeline import pipeline_rows
from edgeface.benchmark.report import format_row, markdown_table, ratios, reference_row
from edgeface.benchmark.rows import COLUMNS, Settings
from edgeface.benchmark.sources import Images, row_sources, scoring_records
from edgeface.benchmark.timing import host, later_rounds, thread_rows
from edgeface.errors import EdgefaceError
from edgeface.utils import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

def benchmark(sources, settings: Settings, output) -> dict:
    """Runs every row, writes benchmark.json / .csv / pareto.png under `output`, returns the JSON payload."""
    from edgeface.benchmark.adb import DEFAULT_BINARY, Device

    s = settings
    if not sources and s.peers_dir is None:
        raise EdgefaceError("give run folders or artifacts to benchmark, and/or --peers")
    records, scored_on = scoring_records(sources, s)
    if not records:
        raise EdgefaceError(f"{scored_on}: no images to score")
    device = Device(s.device, s.device_binary or DEFAULT_BINARY) if s.device else None
    images = Images(records)
    output = Path(output)
    rows, outcomes, timed = [], {}, []
    log.info(f"benchmark on {scored_on}, {len(records)} images; latency: batch {s.batch}, {s.threads} thread(s), "
             f"{s.warmup} warm-up + {s.runs} timed runs per row in {s.rounds} interleaved round(s)")
    for index, (row, make, exports) in enumerate(row_sources(sources, s, output / "artifacts"), start=1):
        known = " ".join(x for x in (row.format, row.precision) if x != "?")  # an export's are known after it
        log.info(f"row {index}: {row.model}{' ' + known if known else ''} ...")
        row, outcome, timing = measure(row, make, exports, images, s, device)
        rows.append(row)
        if outcome is not None and row.status == "ok":
            outcomes[id(row)] = outcome
        if timing is not None:
            timed.append((row, timing))
        log.info(format_row(row) + (f"  (round 1 of {s.rounds}; final figures at the end)" if s.rounds > 1 and
                                     row.latency_mean_ms else ""))
    later_rounds(timed, images, s)
    reference = reference_row([r for r in rows if r.latency_mean_ms], compiled=True)
    rows += thread_rows(timed, images, s)
    if s.photos:
        rows += pipeline_rows(reference, s)
    ratios(rows, reference)
    paired(rows, outcomes, reference)
    payload = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "data": s.data, "split": s.split,
               "scored_on": scored_on, "images": len(records), "host": host(),
               "reference": reference and f"{reference.model} {reference.format} {reference.precision}",
               "settings": s.to_dict(),
               "sources": [str(x) for x in sources], "rows": [dataclasses.asdict(r) for r in rows]}
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "benchmark.json", payload)
    with atomic_path(output / "benchmark.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
    from edgeface.benchmark.plot import pareto_plot

    limit = f", --limit {s.limit}" if s.limit else ""
    pareto_plot(rows, output / "pareto.png", f"{scored_on} ({len(records)} images{limit}), batch {s.batch}, "
                                              f"{s.threads} thread(s)")
    write_text(output / "table.md", markdown_table(rows))
    return payload
