"""The formats table (edgeface.runtime.formats) is the one owner of formats, precisions, I/O forms and
calibration methods: the export writers, the model card schema, the CLI's choices and defaults and README's table
must say the same (issue 31 item 2)."""
import json
import re
from pathlib import Path

import click

import edgeface
from edgeface.benchmark import Settings
from edgeface.cli import main
from edgeface.runtime.formats import FORMATS, IO_CHOICES, ONNX_CALIBRATION_METHODS, PRECISIONS

ROOT = Path(__file__).resolve().parents[1]


def _options(command: str) -> dict:
    return {p.name: p for p in main.commands[command].params if isinstance(p, click.Option)}


def test_every_format_has_a_writer_and_the_card_schema_knows_it():
    from edgeface.export import WRITERS

    assert set(WRITERS) == set(FORMATS)
    schema = json.loads((Path(edgeface.__file__).parent / "model_card.schema.json").read_text())
    artifact = schema["properties"]["artifact"]["properties"]
    assert artifact["format"]["enum"] == list(FORMATS)
    assert artifact["precision"]["enum"] == list(PRECISIONS)
    assert set(artifact["runtime"]["enum"]) == {f.runtime for f in FORMATS.values()}
    assert {p for f in FORMATS.values() for p in f.precisions} == set(PRECISIONS)


def test_every_format_names_the_runner_that_opens_it():
    """The table carries each format's runner (open_runner dispatches through it); the class answers to the
    format's name, and what it opens stays importable without the runtime (TensorRT needs a GPU, not an import)."""
    import importlib

    from edgeface.runtime.runners import Runner

    for fmt in FORMATS.values():
        module, name = fmt.runner.split(":")
        runner = getattr(importlib.import_module(module), name)
        assert issubclass(runner, Runner) and runner.format == fmt.name, fmt.name


def test_cli_choices_and_defaults_are_the_librarys():
    from edgeface.export import ExportOptions

    export = _options("export")
    assert list(export["formats"].type.choices) == [*FORMATS, "all"]
    assert list(export["precisions"].type.choices) == [*PRECISIONS, "all"]
    assert tuple(export["io"].type.choices) == IO_CHOICES
    assert tuple(export["calibration_method"].type.choices) == ONNX_CALIBRATION_METHODS
    defaults = {name: field.default for name, field in ExportOptions.model_fields.items()}
    for option in ("io", "opset", "nchw", "per_channel", "calibration_method"):
        default = export[option].default
        if export[option].is_flag and not isinstance(default, bool):  # click's "unset" flag is off
            default = False
        assert default == defaults[option], option
    benchmark = _options("benchmark")
    assert list(benchmark["formats"].type.choices) == list(FORMATS)
    assert list(benchmark["precisions"].type.choices) == list(PRECISIONS)
    settings = {name: field.default for name, field in Settings.model_fields.items()}
    for option in ("split", "batch", "runs", "rounds", "warmup"):
        assert benchmark[option].default == settings[option], option


def test_readme_formats_table_lists_every_format_and_its_precisions():
    readme = (ROOT / "README.md").read_text()
    for fmt in FORMATS.values():
        row = re.search(rf"^\| `{fmt.name}` \|(.*)\|", readme, re.M)
        assert row, fmt.name
        assert all(p in row.group(1) for p in fmt.precisions), (fmt.name, row.group(1))


def test_compression_flags_show_the_librarys_defaults_and_choices():
    """prune / qat / distill: every default a help text states and every choice is edgeface.run.compression's
    (issue 31 item 2: no '(default 0.5)' typed twice); a method's foreign option is refused by the library."""
    import pytest

    from edgeface.compress import prune
    from edgeface.config import choices
    from edgeface.errors import EdgefaceError
    from edgeface.models.age_heads import AGE_HEADS
    from edgeface.run.compression import (ChannelNorm, Distillation, Magnitude, PruneMethod, PruneSchedule,
                                          Structured)

    flags = _options("prune")
    assert list(flags["method"].type.choices) == choices(PruneMethod)
    assert list(flags["schedule"].type.choices) == choices(PruneSchedule)
    assert list(flags["norm"].type.choices) == choices(ChannelNorm)
    stated = {"sparsity": Magnitude, "schedule": Magnitude, "ratio": Structured, "norm": Structured,
              "min_filters": Structured, "multiple": Structured, "temperature": Distillation,
              "kd_weight": Distillation}
    for option, options in stated.items():
        value = options.model_fields[option].default
        text = f"{value:g}" if isinstance(value, float) else str(value)
        assert f"(default {text})" in flags[option].help, option
    for command in ("qat", "distill"):
        for option in ("temperature", "kd_weight"):
            assert _options(command)[option].help == flags[option].help
    assert list(_options("distill")["age_head"].type.choices) == [n for n, h in AGE_HEADS.items() if h.needs_years]
    with pytest.raises(EdgefaceError, match="ratio: not an option of magnitude pruning"):
        prune("runs/none", "magnitude", ratio=0.3)
    with pytest.raises(EdgefaceError, match="config key 'sparsity'"):
        Magnitude(sparsity=1.5)
