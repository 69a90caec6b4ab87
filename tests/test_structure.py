"""Structure checks: one formats table everyone reads, the layering rules, metrics against an independent oracle,
and the typed config's validation."""
import ast
from collections import defaultdict

import numpy as np
import pytest
import yaml

from conftest import ROOT
from edgeface.card import SCHEMA
from edgeface.errors import EdgefaceError
from edgeface.eval.metrics import age_metrics, gender_metrics
from edgeface.runtime.formats import FORMATS, PRECISIONS, TOLERANCES
from edgeface.run.train_config import TrainConfig, parse_assignments


def test_the_formats_table_drives_writers_runners_tolerances_cli_and_card_schema():
    from edgeface.cli import benchmark, export
    from edgeface.export import WRITERS
    from edgeface.runtime.decode import RULES

    assert set(WRITERS) == set(FORMATS)
    assert set(TOLERANCES) == set(PRECISIONS) >= {p for f in FORMATS.values() for p in f.precisions}
    artifact = SCHEMA["properties"]["artifact"]["properties"]
    assert artifact["format"]["enum"] == list(FORMATS)
    assert set(artifact["runtime"]["enum"]) == {f.runtime for f in FORMATS.values()}
    assert artifact["precision"]["enum"] == list(PRECISIONS)
    rules = SCHEMA["properties"]["outputs"]["items"]["properties"]["decoding"]["properties"]["rule"]["enum"]
    assert set(rules) == set(RULES)
    choices = {p.name: list(p.type.choices) for p in export.params if p.name in ("formats", "precisions")}
    assert choices == {"formats": [*FORMATS, "all"], "precisions": [*PRECISIONS, "all"]}
    bench = {p.name: list(p.type.choices) for p in benchmark.params if p.name in ("formats", "precisions")}
    assert bench == {"formats": list(FORMATS), "precisions": list(PRECISIONS)}


# the rules of ../shared/design/layering.md ("never A -> B"), checked on our own so the test runs anywhere
NEVER = [("models", "compress"), ("models", "train"), ("data", "models"), ("export", "eval"), ("eval", "export"),
         ("export", "benchmark"), ("export", "train"), ("data", "train"), ("runtime", "models"), ("runtime", "run"),
         ("labels", "models"), ("run", "train"), ("run", "export"), ("run", "eval")]


def _imports():
    """{module: {imported edgeface modules}}, function-local imports included."""
    package = ROOT / "edgeface"
    modules = {}
    for file in package.rglob("*.py"):
        parts = file.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    edges = defaultdict(set)
    for name, file in modules.items():
        base = name if file.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    anchor = base.split(".")[:len(base.split(".")) - node.level + 1]
                    module = ".".join(anchor + ([module] if module else []))
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    return modules, edges


def _cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_layer_above_it_and_there_are_no_cycles():
    modules, edges = _imports()

    def layer(module):
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else parts[0]

    broken = [f"{a} -> {b}" for a, bs in edges.items() for b in bs if (layer(a), layer(b)) in NEVER]
    assert not broken, broken
    assert not _cycles(list(modules), edges)
    layers = defaultdict(set)
    for a, bs in edges.items():
        for b in bs:
            if layer(a) != layer(b):
                layers[layer(a)].add(layer(b))
    assert not _cycles(sorted({layer(m) for m in modules}), layers)


def test_gender_metrics_match_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true = rng.integers(0, 2, 500)
    prob = np.clip(true * 0.6 + rng.uniform(0, 0.5, 500) - 0.05, 0, 1)
    pred = (prob >= 0.5).astype(int)
    ours = gender_metrics(true, prob >= 0.5)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(true, pred))
    assert ours["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(true, pred))
    assert ours["precision_male"] == pytest.approx(sk.precision_score(true, pred))
    assert ours["recall_male"] == pytest.approx(sk.recall_score(true, pred))
    assert ours["recall_female"] == pytest.approx(sk.recall_score(true, pred, pos_label=0))
    assert ours["f1_male"] == pytest.approx(sk.f1_score(true, pred))
    assert ours["confusion_matrix"]["counts"] == sk.confusion_matrix(true, pred).tolist()


def test_age_metrics_match_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    from edgeface.labels import age_to_group

    rng = np.random.default_rng(1)
    true = rng.uniform(0, 90, 300).astype(np.float32)
    pred = (true + rng.normal(0, 6, 300)).astype(np.float32)
    ours = age_metrics(true, pred, age_to_group(true), age_to_group(pred), numeric=True)
    assert ours["mae"] == pytest.approx(sk.mean_absolute_error(true, pred), rel=1e-6)
    assert ours["median_abs_error"] == pytest.approx(sk.median_absolute_error(true, pred), rel=1e-6)
    assert ours["group_accuracy"] == pytest.approx(sk.accuracy_score(age_to_group(true), age_to_group(pred)))


def test_typed_config_coerces_yaml_strings_and_names_bad_keys(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("lr: 5e-4\nbackbone: compact_cnn\naugment: {zoom: 0.2}\n")  # YAML 1.1 reads 5e-4 as a string
    assert yaml.safe_load(file.read_text())["lr"] == "5e-4"
    cfg = TrainConfig.load(str(file), parse_assignments(["model.dropout=0.3", "augment.mixup=0.2"]))
    assert cfg.lr == 5e-4 and isinstance(cfg.lr, float)
    assert cfg.model.backbone == "compact_cnn" and cfg.model.input_size == 96  # the backbone's default size
    assert cfg.model.dropout == 0.3 and cfg.augment.zoom == 0.2 and cfg.augment.mixup == 0.2
    assert TrainConfig(**cfg.to_dict()) == cfg  # round-trips through its saved form
    for kwargs, message in (({"lr": "fast"}, "config key 'lr'"), ({"epochs": 0}, "config key 'epochs'"),
                            ({"optimizer": "lion"}, "config key 'optimizer'"),
                            ({"model": {"head_units": -1}}, "config key 'model.head_units'"),
                            ({"augment": {"spin": 1}}, "unknown config key 'augment.spin'")):
        with pytest.raises(EdgefaceError, match=message):
            TrainConfig(**kwargs)
    file.write_text("lr: [1, 2]\n")
    with pytest.raises(EdgefaceError, match=f"{file}: config key 'lr'"):
        TrainConfig.load(str(file))


def test_every_user_facing_options_object_is_typed_the_same_way():
    """TrainConfig, ExportOptions and the benchmark's Settings: one base, so the Python API refuses a wrong key or
    value in one line as the CLI does (issue 31)."""
    from edgeface.benchmark import Settings
    from edgeface.config import Config
    from edgeface.export import ExportOptions, PtqCorrections

    assert all(issubclass(kind, Config) for kind in (TrainConfig, ExportOptions, Settings))
    for kind, kwargs, message in ((Settings, {"runs": 0}, "config key 'runs'"),
                                  (Settings, {"thread_sweep": (2, 0)}, "config key 'thread_sweep.1'"),
                                  (Settings, {"split": "dev"}, "config key 'split'"),
                                  (ExportOptions, {"opset": "new"}, "config key 'opset'"),
                                  (ExportOptions, {"calibraton": "x"}, "unknown config key 'calibraton'"),
                                  (ExportOptions, {"tolerances": {"agreement": 1.5}}, "out of range")):
        with pytest.raises(EdgefaceError, match=message):
            kind(**kwargs)
    options = ExportOptions(corrections=PtqCorrections(adaround=True), keep_float=["a"])
    assert options.replace(keep_float_reason="auto").corrections == PtqCorrections(adaround=True)
    assert Settings(threads=2).replace(threads=4).threads == 4


def test_older_flat_run_configs_still_read():
    flat = {"data": "synthetic", "backbone": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "age_head": "regression",
            "tasks": ["gender", "age"], "weights": "none", "dropout": 0.2, "head_units": 0, "epochs": 20}
    cfg = TrainConfig(**flat)
    assert cfg.model.backbone == "mobilenet_v1" and cfg.model.alpha == 0.5 and cfg.epochs == 20


def test_age_bands_are_listed_in_age_order():
    from edgeface.eval.metrics import breakdown
    from edgeface.labels import AGE_GROUP_LABELS

    bands = list(reversed(AGE_GROUP_LABELS)) * 3
    table = breakdown(bands, np.zeros(len(bands), int), np.zeros(len(bands)), None, False)
    assert list(table["groups"]) == list(AGE_GROUP_LABELS)  # 0-2, 4-6, 8-12, ... not "15-20" before "4-6"
