import re
import shutil

import pytest

from conftest import UTKFACE, face_image, require_shared
from edgeface.data import FEMALE, MALE, deduplicate, load_data, stratified_split
from edgeface.data.readers import adience_age_group, parse_utkface_name
from edgeface.errors import EdgefaceError


def test_utkface_reader_uses_canonical_split_and_tolerates_irregular_names(utk_folder):
    bundle = load_data(f"utkface:{utk_folder}")
    assert [len(bundle[s]) for s in ("train", "val", "test")] == [30, 7, 6]
    assert bundle.split_source.startswith("canonical")
    by_name = {r.path.rsplit("/", 1)[1]: r for r in bundle["test"] + bundle["val"] + bundle["train"]}
    missing_race = by_name["39_1_20170116174525125.jpg.chip.jpg"]
    assert (missing_race.age, missing_race.gender, missing_race.race) == (39, FEMALE, None)
    assert by_name["26_0_1_20170116 .jpg.chip.jpg"].gender == MALE


def test_utkface_name_parsing():
    assert parse_utkface_name("100_0_0_20170112213500903.jpg.chip.jpg") == (100, MALE, "White")
    assert parse_utkface_name("61_1_20170109142408075.jpg.chip.jpg") == (61, FEMALE, None)
    assert parse_utkface_name("x_1_2.jpg") is None


def test_corrupt_images_are_skipped_with_a_warning(utk_folder, caplog):
    bad = utk_folder / "UTKFace" / "1_0_0_20170110000.jpg.chip.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    bundle = load_data(f"utkface:{utk_folder}")
    assert re.search("skipped 1 images.*1_0_0_20170110000", caplog.text) and "WARNING" in caplog.text
    assert len(bundle["train"]) == 29 and bundle.skipped[0][0] == str(bad)


def test_split_file_listing_unknown_image_fails(utk_folder):
    (utk_folder / "splits" / "test.txt").write_text("nope.jpg\n")
    with pytest.raises(EdgefaceError, match="test.txt: 1 listed images"):
        load_data(f"utkface:{utk_folder}")


def test_generated_split_is_stratified_deterministic_and_written(utk_folder, tmp_path):
    shutil.rmtree(utk_folder / "splits")
    a = load_data(f"utkface:{utk_folder}", seed=3)
    b = load_data(f"utkface:{utk_folder}", seed=3)
    assert a.split_source.startswith("generated") and a.splits == b.splits
    assert sum(len(v) for v in a.splits.values()) == 43
    from edgeface.run import Run
    run = Run(tmp_path)
    run.write_data(a)  # a run records the split it trained on, and reads it back with the labels
    assert run.split_paths("train") == [r.path for r in a["train"]] and run.split("val") == a["val"]
    assert run.data_info["counts"]["train"] == len(a["train"])


def test_stratified_split_keeps_proportions():
    from edgeface.data import Record
    records = [Record(f"{i}.jpg", i % 2, 30.0, (i // 2) % 4) for i in range(400)]
    parts = stratified_split(records, {"train": 0.8, "test": 0.2}, seed=0)
    assert len(parts["test"]) == 80
    assert sum(r.gender for r in parts["test"]) == 40


def test_adience_reader_maps_stray_labels_and_folds(adience_folder, caplog):
    bundle = load_data(f"adience:{adience_folder}", fold=2)
    assert "skipped 10 images" in caplog.text
    assert {r.source for r in bundle["test"]} == {"adience/fold2"}
    assert sorted(r.age_group for r in bundle["test"]) == [0, 2, 3, 4, 5, 5]  # None age and gender u dropped
    assert len(bundle["train"]) + len(bundle["val"]) == 24 and not bundle.numeric_age
    assert adience_age_group("(38, 42)") == 5 and adience_age_group("57") == 7 and adience_age_group("99") is None


def test_adience_wrong_layout_names_expected_files(tmp_path):
    with pytest.raises(EdgefaceError, match="missing fold_0_data.txt"):
        load_data(f"adience:{tmp_path}")


def test_celeba_reader(tmp_path):
    names = [f"{i:06d}.jpg" for i in range(1, 13)]
    for i, n in enumerate(names):
        face_image(tmp_path / "img_align_celeba" / n, i)
    attrs = ["12", "Smiling Male"] + [f"{n} 1 {'1' if i % 3 else '-1'}" for i, n in enumerate(names)]
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(attrs) + "\n")
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(f"{n} {min(i // 4, 2)}" for i, n in enumerate(names)))
    bundle = load_data(f"celeba:{tmp_path}")
    assert [len(bundle[s]) for s in ("train", "val", "test")] == [4, 4, 4]
    assert bundle["train"][0].gender == FEMALE and bundle["train"][1].gender == MALE
    assert not bundle.has_labels("age")


def test_fairface_reader(tmp_path):
    for split in ("train", "val"):
        rows = ["file,age,gender,race,service_test"]
        for i in range(12):
            face_image(tmp_path / split / f"{i}.jpg", i)
            rows.append(f"{split}/{i}.jpg,{['0-2', '20-29', 'more than 70'][i % 3]},{'Male' if i % 2 else 'Female'},"
                        f"White,True")
        (tmp_path / f"fairface_label_{split}.csv").write_text("\n".join(rows) + "\n")
    bundle = load_data(f"fairface:{tmp_path}")
    assert len(bundle["test"]) == 12 and len(bundle["train"]) + len(bundle["val"]) == 12
    assert sorted({r.age_group for r in bundle["test"]}) == [0, 4, 7]


def test_csv_manifest_and_its_label_errors(csv_manifest):
    bundle = load_data(f"csv:{csv_manifest}")
    assert sum(len(v) for v in bundle.splits.values()) == 30 and bundle.numeric_age
    csv_manifest.write_text("path,gender,age\nimg/0.png,x,30\n")
    with pytest.raises(EdgefaceError, match=r"faces.csv:2: wrong label format: gender 'x'"):
        load_data(f"csv:{csv_manifest}")
    csv_manifest.write_text("file,sex\nimg/0.png,m\n")
    with pytest.raises(EdgefaceError, match="header with path,gender,age"):
        load_data(f"csv:{csv_manifest}")


def test_dedup_keeps_agreeing_copies_and_drops_conflicts(tmp_path):
    from edgeface.data import Record
    a = face_image(tmp_path / "a.png", 1)
    for name in ("b.png", "c.png"):
        shutil.copy(a, tmp_path / name)
    d = face_image(tmp_path / "d.png", 2)
    shutil.copy(d, tmp_path / "e.png")
    records = [Record(str(tmp_path / n), 1, 30.0, 4) for n in ("a.png", "b.png", "d.png")]
    records += [Record(str(tmp_path / "c.png"), 1, 30.0, 4), Record(str(tmp_path / "e.png"), 0, 30.0, 4)]
    kept, dropped, copies = deduplicate(records)
    assert [r.path for r in kept] == [str(tmp_path / "a.png")] and copies == 2
    assert sorted(p for p, _ in dropped) == [str(tmp_path / "d.png"), str(tmp_path / "e.png")]


def test_bad_specs():
    with pytest.raises(EdgefaceError, match="use KIND:PATH"):
        load_data("imagenet:/x")
    with pytest.raises(EdgefaceError, match="/nope: no such file"):
        load_data("utkface:/nope")


def test_synthetic_dataset_is_cached_and_labelled():
    bundle = load_data("synthetic:80")
    assert sum(len(v) for v in bundle.splits.values()) == 80
    assert load_data("synthetic:80").splits == bundle.splits


@pytest.mark.slow
def test_real_utkface_folder():
    bundle = load_data(f"utkface:{require_shared(UTKFACE)}", check=False)
    assert [len(bundle[s]) for s in ("train", "val", "test")] == [18479, 2307, 2307]
    assert all(r.age is not None and r.gender in (0, 1) for r in bundle["test"])
