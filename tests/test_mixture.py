"""Several datasets at once (issue 30): readers for LFW with gender lists and IMDB-WIKI name-encoded ages, splits by
person, mixture files with sampling weights and validation on a declared source, and chips cut from photos."""
from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import face_image, photo_with_chip
from edgeface.cli import main
from edgeface.data import load_data
from edgeface.data.mixture import sample
from edgeface.errors import EdgefaceError


@pytest.fixture
def lfw_folder(tmp_path):
    root = tmp_path / "lfw"
    male, female = [], []
    for p in range(30):
        person = f"Person_{p:02d}"
        for k in range(1 + p % 4):
            name = f"{person}_{k + 1:04d}.jpg"
            face_image(root / "lfw" / person / name, p * 10 + k)
            (male if p % 3 else female).append(name)
    male.append("Person_00_0001.jpg")  # on both lists
    (root / "etc").mkdir()
    (root / "etc" / "male_names.txt").write_text("\n".join(male) + "\n")
    (root / "etc" / "female_names.txt").write_text("\n".join(female) + "\n")
    face_image(root / "lfw" / "Nobody" / "Nobody_0001.jpg", 999)  # on neither list
    return root


@pytest.fixture
def imdb_folder(tmp_path):
    root = tmp_path / "imdb"
    for p in range(10):
        for k in range(2):
            face_image(root / f"{p:02d}" / f"nm00{p:05d}_rm{k}{p}_19{50 + p}-3-{k + 1}_20{10 + k}.jpg", p * 3 + k)
    face_image(root / "00" / "nm0000001_rm9_1994-3-1_1989.jpg", 7)  # age -5
    face_image(root / "00" / "not_a_name.jpg", 8)
    return root


def _people(records):
    return {r.path.split("/")[-2] for r in records}


def test_lfw_reader_labels_gender_only_and_splits_by_person(lfw_folder):
    bundle = load_data(f"lfw:{lfw_folder}", seed=3, verbose=False)
    reasons = {why for _, why in bundle.skipped}
    assert reasons == {"on both gender lists", "on neither gender list"}
    records = [r for s in bundle.splits.values() for r in s]
    assert len(records) == sum(1 + p % 4 for p in range(30)) - 1
    assert all(r.age is None and r.age_group is None and r.gender in (0, 1) and r.source == "lfw" for r in records)
    train, val, test = (_people(bundle.splits[k]) for k in ("train", "val", "test"))
    assert train and val and test and not (train & val or train & test or val & test)
    again = load_data(f"lfw:{lfw_folder}", seed=3, verbose=False)
    assert [r.path for r in again.splits["val"]] == [r.path for r in bundle.splits["val"]]


def test_imdbwiki_reader_takes_age_from_the_name_and_splits_by_person(imdb_folder):
    bundle = load_data(f"imdbwiki:{imdb_folder}", verbose=False)
    assert len(bundle.skipped) == 2
    records = {r.path.split("/")[-1]: r for s in bundle.splits.values() for r in s}
    assert records["nm0000003_rm13_1953-3-2_2011.jpg"].age == 2011 - 1953
    assert all(r.gender is None for r in records.values())
    ids = {k: {r.path.split("/")[-1].split("_")[0] for r in bundle.splits[k]} for k in ("train", "val", "test")}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])


def test_mixture_samples_by_weight_and_validates_on_the_declared_source(lfw_folder, imdb_folder, utk_folder,
                                                                       tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text(f"validate_on: utk\nsources:\n  utk: {{data: 'utkface:{utk_folder}'}}\n"
                   f"  lfw: {{data: 'lfw:{lfw_folder}', weight: 2}}\n"
                   f"  imdb: {{data: 'imdbwiki:{imdb_folder}', weight: 0.5}}\n")
    bundle = load_data(f"mix:{mix}", verbose=False)
    parts = {name: load_data(spec, verbose=False) for name, spec in
             (("utk", f"utkface:{utk_folder}"), ("lfw", f"lfw:{lfw_folder}"), ("imdb", f"imdbwiki:{imdb_folder}"))}
    by_source = {}
    for r in bundle.splits["train"]:
        by_source[r.source] = by_source.get(r.source, 0) + 1
    assert by_source == {"utk": len(parts["utk"]["train"]), "lfw": 2 * len(parts["lfw"]["train"]),
                         "imdb": round(0.5 * len(parts["imdb"]["train"]))}
    assert {r.source for r in bundle.splits["val"]} == {"utk", "lfw", "imdb"}  # every source reported ...
    assert bundle.choice_val() == [r for r in bundle.splits["val"] if r.source == "utk"] != []  # ... one chooses
    assert {r.source for r in bundle.splits["test"]} == {"utk", "lfw", "imdb"}


@pytest.mark.slow
def test_a_mixture_run_chooses_on_its_declared_source_and_reports_every_source(lfw_folder, imdb_folder,
                                                                                utk_folder, tmp_path):
    """The in-fit validation (the best-epoch choice) sees the declared source only; metrics.json then scores the
    best model on every source's val images, each apart."""
    import csv

    import edgeface
    from edgeface.eval import evaluate_records
    from edgeface.run.train_config import TrainConfig
    from edgeface.train.trainer import train

    mix = tmp_path / "mix.yaml"
    mix.write_text(f"validate_on: utk\nsources:\n  lfw: {{data: 'lfw:{lfw_folder}'}}\n"
                   f"  utk: {{data: 'utkface:{utk_folder}'}}\n  imdb: {{data: 'imdbwiki:{imdb_folder}'}}\n")
    run = train(TrainConfig(data=f"mix:{mix}", backbone="compact_cnn", input_size=32, weights="none", batch_size=16,
                            warmup_epochs=0, lr=3e-3, verbose=0, epochs=2, runs_dir=str(tmp_path / "runs")))
    metrics = run.metrics
    assert metrics["best_epoch_chosen_on"] == "utk" and run.data_info["validate_on"] == "utk"
    groups = metrics["by_source"]["groups"]
    assert set(groups) == {"utk", "lfw", "imdb"} and metrics["n"] == sum(g["n"] for g in groups.values())
    assert {r.source for r in run.split("val")} == {"utk", "lfw", "imdb"}
    utk_val = [r for r in run.split("val") if r.source == "utk"]
    alone = evaluate_records(edgeface.load(run.path), utk_val)
    assert groups["utk"]["gender_accuracy"] == alone["gender"]["accuracy"]
    rows = list(csv.DictReader(run.history_file.open()))
    best = rows[metrics["best_epoch"] - 1]
    # the epoch line scored the best model on the declared source's val images, not on the whole val split
    assert float(best["val_gender_accuracy"]) == pytest.approx(alone["gender"]["accuracy"], abs=1e-6)
    assert float(best["val_loss"]) > 0


@pytest.mark.parametrize("text,message", [
    ("sources: {}\n", "expected `sources:`"),
    ("sources:\n  a: {data: 'mix:x.yaml'}\n", "itself a mixture"),
    ("sources:\n  a: {data: 'synthetic', weight: -1}\n", "weight must be"),
    ("validate_on: b\nsources:\n  a: {data: 'synthetic'}\n", "not one of the sources"),
    ("a: &x [1, 2]\nb: *x\nsources:\n  a: {data: 'synthetic'}\n", "anchors and aliases"),
])
def test_bad_mixture_files_are_one_line_errors(tmp_path, text, message):
    mix = tmp_path / "mix.yaml"
    mix.write_text(text)
    with pytest.raises(EdgefaceError, match=message):
        load_data(f"mix:{mix}", verbose=False)


def test_sampling_is_seeded_and_whole_repeats_keep_every_record():
    records = list(range(10))
    drawn = sample(records, 2.5, seed=1)
    assert len(drawn) == 25 and all(drawn.count(r) >= 2 for r in records)
    assert sample(records, 0.3, seed=1) == sample(records, 0.3, seed=1) != sample(records, 0.3, seed=2)


def test_chips_frame_photos_like_the_training_chips(tmp_path):
    photo, (left, top, side) = photo_with_chip(tmp_path)
    source = tmp_path / "photos" / "a"
    source.mkdir(parents=True)
    shutil.copy(photo, source / "face.jpg")
    Image.new("RGB", (300, 200), (128, 128, 128)).save(source / "grey.jpg")
    (tmp_path / "photos" / "names.txt").write_text("face.jpg\n")
    result = CliRunner().invoke(main, ["chips", str(tmp_path / "photos"), str(tmp_path / "chips")])
    assert result.exit_code == 0, result.output
    assert "1 chips written" in result.output and "1 photos without a face" in result.output
    chip = Image.open(tmp_path / "chips" / "a" / "face.jpg")
    assert abs(chip.width - side) / side < 0.15  # the contract frames the face like the chip it came from
    assert (tmp_path / "chips" / "names.txt").read_text() == "face.jpg\n"
    assert not (tmp_path / "chips" / "a" / "grey.jpg").exists()
    again = CliRunner().invoke(main, ["chips", str(tmp_path / "photos"), str(tmp_path / "chips")])
    assert "1 already there" in again.output


def test_a_mixture_is_evaluated_per_source(lfw_folder, imdb_folder, utk_folder, tmp_path):
    """Cross-dataset evaluation: one report, each source apart, each scored on the tasks it labels."""
    import edgeface
    from edgeface.bundled import bundled_model
    from edgeface.eval import evaluate_records

    mix = tmp_path / "mix.yaml"
    mix.write_text(f"sources:\n  utk: {{data: 'utkface:{utk_folder}'}}\n  lfw: {{data: 'lfw:{lfw_folder}'}}\n"
                   f"  imdb: {{data: 'imdbwiki:{imdb_folder}'}}\n")
    test = load_data(f"mix:{mix}", verbose=False)["test"]
    report = evaluate_records(edgeface.load(bundled_model()), test)
    groups = report["by_source"]["groups"]
    assert set(groups) == {"utk", "lfw", "imdb"}
    assert "gender_accuracy" in groups["lfw"] and "age_mae" not in groups["lfw"]
    assert "age_mae" in groups["imdb"] and "gender_accuracy" not in groups["imdb"]
    assert sum(g["n"] for g in groups.values()) == len(test)


def test_band_weights_lift_rare_age_bands_and_leave_unbanded_images_at_one():
    """`band_weight`: rare bands weigh more in every task's loss, the mean over banded images stays 1, and an image
    without an age (LFW) keeps weight 1 while its gender label still counts."""
    from edgeface.data.records import Record
    from edgeface.models import ModelSpec
    from edgeface.train.trainer import band_weights

    records = ([Record(path=f"c{i}", gender=0, age=1.0, age_group=0) for i in range(10)]
               + [Record(path=f"a{i}", gender=1, age=30.0, age_group=4) for i in range(90)]
               + [Record(path="lfw", gender=1)])
    assert band_weights(records, "none") is None
    for kind, child in (("balanced", 5.0), ("sqrt", 2.5)):
        bw = band_weights(records, kind)
        assert bw[0] == pytest.approx(child) and bw[0] > bw[4]
        assert (10 * bw[0] + 90 * bw[4]) / 100 == pytest.approx(1.0)
    spec = ModelSpec(backbone="compact_cnn", input_size=32, age_head="regression")
    _, weights = spec.encode_targets(records, band_weight=band_weights(records, "balanced"))
    assert weights["gender"][0] == pytest.approx(5.0) and weights["gender"][-1] == 1.0
    assert weights["age"][0] == pytest.approx(5.0) and weights["age"][-1] == 0.0  # no age: no age loss
