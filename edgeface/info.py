"""`edgeface info ARTIFACT`: an exported artifact's model card as an app developer reads it (what to feed, what
comes out and how to decode it, how faces must be cropped, what it was trained on, how well it scores) with the
result of every load check first - the card the tool reads, in words (issue 32 item 14)."""
from __future__ import annotations

from pathlib import Path

from edgeface.card import read_card
from edgeface.errors import EdgefaceError


def _num(value, spec: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
    return "—" if value is None else f"{scale * value:{spec}}{unit}"


def describe(artifact) -> str:
    """Readable card of `artifact` (a .tflite/.onnx/.engine file or SavedModel folder), verified as it is opened."""
    from edgeface.predictor import load

    path = Path(artifact)
    if path.suffix == ".json":
        raise EdgefaceError(f"{path}: a model card; pass the artifact it describes")
    if not path.exists():
        raise EdgefaceError(f"{path}: no such artifact")
    card = read_card(path)  # a missing or unreadable card is the one error info cannot describe around
    try:
        load(path)
        verdict = "verified (card schema, embedded copy, sha256, normalization, outputs, I/O)"
    except EdgefaceError as err:
        verdict = f"NOT verified: {err}"
    a, m, i, t = card["artifact"], card["model"], card["input"], card["training"]
    lines = [f"{path}", f"  check      {verdict}",
             f"  artifact   {a['format']} {a['precision']} for {a['runtime']}, {a['size_bytes'] / 1024:.0f} KiB, "
             f"sha256 {a['sha256'][:16]}… ({a['sha256_of']}), edgeface {card['edgeface_version']}, {card['created']}",
             f"  model      {m['backbone']}" + (f" alpha {m['alpha']}" if m.get("alpha") else "")
             + f", {m['parameters']:,} parameters, tasks {', '.join(m['tasks'])}"
             + (f", {m['age_head']} age head" if "age" in m["tasks"] else "")]
    norm = i["normalization"]
    lines += [f"  input      {i['name']} {i['shape']} {i['dtype']} {i['layout']} {i['color_order']}"
              + (f", {i['encoding'].replace('_', ' ')}" if i.get("encoding") else ""),
              f"             {i['preprocessing']}",
              f"             normalization {norm['formula']}, mean {norm['mean']}, std {norm['std']}"
              + (f" ({norm['applied_by']})" if norm.get("applied_by") else "")]
    if i.get("quantization"):
        q = i["quantization"]
        lines.append(f"             quantization scale {q['scale']:.6g}, zero point {q['zero_point']}: {q['formula']}")
    for output in card["outputs"]:
        lines.append(f"  output     {output['name']} {output['shape']} {output['dtype']}: {output['meaning']}; "
                     f"decode: {output['decode']}")
    labels = card.get("labels", {})
    if labels.get("age_groups"):
        lines.append(f"  age groups {', '.join(labels['age_groups'])}")
    crop = i.get("crop", {})
    if crop:
        lines.append(f"  crop       trained on {crop['framing']}; from photos: detector {crop['default_detector']}")
        for name, rule in crop.get("detectors", {}).items():
            lines.append(f"             {name}: side {rule['scale']} x box width, centre offset {rule['offset']} "
                         f"from the {rule['anchor'].replace('_', ' ')}"
                         + (", eyes levelled" if rule.get("rotate_to_level_eyes") else ""))
    counts = t.get("counts", {})
    lines.append(f"  training   {t['data']} ({t['split']}; " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                 + f"); run {t['run']}")
    if t.get("parents"):
        lines.append(f"             lineage (nearest first): {', '.join(t['parents'])}")
    if t.get("compression"):
        c = t["compression"]
        lines.append(f"             compression {c.get('method')}"
                     + (f", teachers {', '.join(c['teacher'])}" if c.get("teacher") else ""))
    for name, metric in card.get("metrics", {}).items():
        if "checks" in metric:
            checks = ", ".join(f"{c['name']} {c['value']:.4g}" + ("" if c["limit"] is None else
                                                                   f" (limit {c['limit']:.4g})")
                               for c in metric["checks"])
            lines.append(f"  {'parity':10} {name.replace('_', ' ')}: {'passed' if metric['passed'] else 'FAILED'} "
                         f"on {metric['n']} images: {checks}")
        elif "n" in metric:
            lines.append(f"  {'metrics':10} {name.replace('_', ' ')} ({metric.get('split', '?')}, {metric['n']:,} "
                         f"images): gender {_num(metric.get('gender_accuracy'), '.2f', 100, '%')}, age MAE "
                         f"{_num(metric.get('age_mae'), '.2f', unit=' y')}, age group "
                         f"{_num(metric.get('age_group_accuracy'), '.2f', 100, '%')}")
    return "\n".join(lines)
