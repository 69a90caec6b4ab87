"""The fault sweep (the fault-sweep issue): each test reproduces one class of fault a user met and checks the
mature behaviour: one line naming the file and the problem, nothing lost, nothing that looks valid left
behind, no file that runs code, one writer per run. `tools/fault_sweep.sh` runs this module and prints one
line per fault."""
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import edgeface
from conftest import UTKFACE, face_image, require_shared
from edgeface.bundled import bundled_model
from edgeface.card import card_path, seal
from edgeface.cli import main
from edgeface.data import load_data
from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.train import trainer

TINY = dict(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", batch_size=16,
            warmup_epochs=0, lr=3e-3, verbose=0)


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(code, output, fragment):
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in output and len(errors) == 1 and fragment in errors[0], output


def csv_dataset(folder, n, gender=lambda i: "m" if i % 2 else "f", split=None):
    rows = ["path,gender,age" + (",split" if split else "")]
    for i in range(n):
        face_image(folder / "img" / f"{i}.png", i, size=48)
        rows.append(f"img/{i}.png,{gender(i)},{20 + i}" + (f",{split(i)}" if split else ""))
    (folder / "faces.csv").write_text("\n".join(rows) + "\n")
    return folder / "faces.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trainer.train(TrainConfig(**TINY, epochs=1, runs_dir=str(tmp_path_factory.mktemp("runs")), name="r"))


def test_fault_01_a_failed_start_leaves_no_run_folder(tmp_path, monkeypatch):
    for args, fragment in ((["--data", "utkface:/no/such"], "/no/such: no such file"),
                           (["--data", "synthetic:40", "--backbone", "mobilenet_v2", "--alpha", "0.6"],
                            "exist at alpha")):
        one_line_error(*cli("train", *args, "--name", "x", "--runs-dir", tmp_path), fragment)
    assert not (tmp_path / "x").exists()
    one_line_error(*cli("train", "--resume", "--name", "x", "--runs-dir", tmp_path), "nothing to resume")

    def broken_fit(*args, **kwargs):  # a failure after the folder was made, before any epoch finished
        raise EdgefaceError("the model could not be built")

    monkeypatch.setattr(trainer, "_fit", broken_fit)
    with pytest.raises(EdgefaceError):
        trainer.train(TrainConfig(**TINY, epochs=1, runs_dir=str(tmp_path), name="x"))
    assert not (tmp_path / "x").exists()


def test_fault_02_a_tiff_named_jpg_is_skipped_and_counted(tmp_path):
    csv = csv_dataset(tmp_path, 10)
    Image.new("RGB", (48, 48), (90, 40, 20)).save(tmp_path / "img" / "3.png", format="TIFF")
    bundle = load_data(f"csv:{csv}")
    assert any(path.endswith("3.png") and "TIFF" in why for path, why in bundle.skipped)
    assert sum(len(v) for v in bundle.splits.values()) == 9
    code, output = cli("predict", tmp_path / "img" / "3.png")
    assert code == 1 and f"{tmp_path / 'img' / '3.png'}  error: a TIFF image, which TensorFlow's decoder cannot read" \
        in output and "Traceback" not in output


def test_fault_02b_jpegs_corrupt_mid_file_are_skipped_everywhere(utk_folder, tmp_path):
    """Zeroed bytes or an end marker inside the entropy data pass PIL's check but fail the strict decoder the
    pipeline uses: they are skipped and counted like other unreadable images, and predict still answers for the
    good images beside them."""
    import io

    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    middle = len(data) // 2
    zeroed = data[:middle] + bytes(2000) + data[middle + 2000:]
    early_end = data[:middle] + b"\xff\xd9" + data[middle:]
    names = sorted((utk_folder / "splits" / "train.txt").read_text().split())[:2]
    for name, bytes_ in zip(names, (zeroed, early_end)):
        (utk_folder / "UTKFace" / name).write_bytes(bytes_)
    bundle = load_data(f"utkface:{utk_folder}", verbose=False)
    skipped = {Path(p).name: why for p, why in bundle.skipped}
    assert set(names) <= set(skipped) and all("Corrupt JPEG" in skipped[n] for n in names)
    good = face_image(tmp_path / "good.png", 1, size=128)
    result = CliRunner().invoke(main, ["predict", str(good), str(utk_folder / "UTKFace" / names[0]), "--json"])
    rows = json.loads(result.output[result.output.index("{"):])["predictions"]
    assert result.exit_code == 1 and len(rows) == 2
    assert rows[0]["gender"] in ("male", "female") and "Corrupt JPEG" in rows[1]["error"]


def test_fault_03_tiny_empty_and_single_class_datasets(tmp_path, caplog, monkeypatch):
    with monkeypatch.context() as patch:  # first, while no CLI call has taken edgeface's messages for itself
        patch.setattr(trainer, "_fit", lambda *a, **k: (_ for _ in ()).throw(EdgefaceError("stop here")))
        csv = csv_dataset(tmp_path / "men", 30, gender=lambda i: "m")
        with pytest.raises(EdgefaceError, match="stop here"):
            trainer.train(TrainConfig(**{**TINY, "data": f"csv:{csv}"}, epochs=1,
                                      runs_dir=str(tmp_path / "men-runs")))
    assert "every training image has the same gender label" in caplog.text
    for n in (1, 5):
        folder = tmp_path / f"n{n}"
        one_line_error(*cli("train", "--data", f"csv:{csv_dataset(folder, n)}", "--backbone", "compact_cnn",
                            "--weights", "none", "--runs-dir", folder / "runs"), "split is empty")
    folder = tmp_path / "test-only"
    csv = csv_dataset(folder, 6, split=lambda i: "test")
    one_line_error(*cli("train", "--data", f"csv:{csv}", "--backbone", "compact_cnn", "--weights", "none",
                        "--runs-dir", folder / "runs"), "the train split is empty")


def test_fault_04_backbone_and_weights_mistakes(tmp_path, monkeypatch):
    from edgeface.models.registry import get_backbone_config
    from edgeface.models.weights import build_with_imagenet

    one_line_error(*cli("train", "--data", "synthetic:40", "--backbone", "vit", "--input-size", "36",
                        "--weights", "none", "--runs-dir", tmp_path), "multiple of 8")
    one_line_error(*cli("train", "--data", "synthetic:40", "--backbone", "compact_cnn", "--runs-dir", tmp_path),
                   "compact_cnn has no ImageNet weights")
    one_line_error(*cli("train", "--data", "synthetic:40", "--alpha", "0.6", "--runs-dir", tmp_path),
                   "exist at alpha 0.35, 0.5, 0.75, 1.0, 1.3, 1.4, not 0.6")
    weights = tmp_path / "weights"
    weights.mkdir()
    name = "mobilenet_2_5_128_tf_no_top.h5"
    (weights / name).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # a truncated download
    (weights / "SHA256SUMS").write_text(f"{'0' * 64}  {name}\n")
    one_line_error(*cli("train", "--data", "synthetic:120", "--backbone", "mobilenet_v1", "--alpha", "0.25",
                        "--input-size", "32", "--weights-dir", weights, "--runs-dir", tmp_path / "runs"),
                   "sha256 does not match")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    (weights / "SHA256SUMS").unlink()
    one_line_error(*cli("train", "--data", "synthetic:120", "--backbone", "mobilenet_v1", "--alpha", "0.25",
                        "--input-size", "32", "--weights-dir", weights, "--runs-dir", tmp_path / "runs"),
                   "cannot load these ImageNet weights")
    url = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnetb0_notop.h5"

    def offline(**kwargs):
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(EdgefaceError) as err:
        build_with_imagenet(offline, get_backbone_config("efficientnet_b0"))
    assert url in str(err.value)  # the whole address, not cut mid-word


def test_fault_05_calibration_manifests(tmp_path, monkeypatch):
    from edgeface.export.calibration import find_manifest

    (tmp_path / "img").mkdir()
    face_image(tmp_path / "img" / "ok.jpg", 0)
    data = (tmp_path / "img" / "ok.jpg").read_bytes()
    (tmp_path / "img" / "bad.jpg").write_bytes(data[: len(data) // 3])
    manifest = tmp_path / "m.txt"
    manifest.write_text(f"# edgeface calibration manifest v1\n# root: {tmp_path}\nimg/ok.jpg\nimg/bad.jpg\n")
    with pytest.raises(EdgefaceError, match="bad.jpg: unreadable image .*listed in the calibration manifest"):
        find_manifest(str(manifest)).resolve()
    require_shared(UTKFACE)
    monkeypatch.chdir(tmp_path)  # the shipped manifest, from a folder that is not the repository
    shipped = find_manifest("utkface-train-300")
    assert len(shipped.resolve()) == 300


def test_fault_06_tensorrt_without_a_gpu_is_one_line(run, tmp_path):
    from edgeface.runtime.tensorrt import cuda_available

    if cuda_available()[0]:
        pytest.skip("a CUDA GPU is present: the no-GPU message does not apply")
    one_line_error(*cli("export", run.path, "--format", "trt", "--precision", "fp16", "--output", tmp_path),
                   "TensorRT export needs an NVIDIA GPU")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # three exports
def test_fault_07_an_interrupted_re_export_never_pairs_a_file_with_another_card(run, tmp_path, monkeypatch):
    """Killed or out of disk while installing a re-export: the previous verified pair stays intact and loads,
    no staging files are left beside it, and a full disk is one error naming the output folder."""
    import errno

    from edgeface.export import export

    import time

    first, = export(run.path, ["tflite"], ["fp32"], tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    time.sleep(1.1)  # a re-export's card (embedded in the file too) records a later second: other bytes
    copy = shutil.copyfile
    calls = []

    def killed(src, dst, *args, **kwargs):  # the second file copied into place: the artifact is already there
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", killed)
    with pytest.raises(KeyboardInterrupt):
        export(run.path, ["tflite"], ["fp32"], tmp_path)

    def full(src, dst, *args, **kwargs):
        copy(src, dst, *args, **kwargs)
        with open(dst, "r+b") as f:  # half written, then the disk is full
            f.truncate(Path(src).stat().st_size // 2)
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(EdgefaceError, match=f"{tmp_path}: cannot write the export there .No space left on device"):
        export(run.path, ["tflite"], ["fp32"], tmp_path)
    monkeypatch.setattr(shutil, "copyfile", copy)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging files left beside it
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert edgeface.load(first.path).card["artifact"]["file"] == first.path.name
    export(run.path, ["tflite"], ["fp32"], tmp_path)  # a completed re-export does replace them: the check above
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}  # could have failed
    assert after.keys() == before.keys() and after[first.path.name] != before[first.path.name]


@pytest.mark.slow  # a benchmark
def test_fault_08_benchmark_rows_verify_the_artifact_first(tmp_path):
    from edgeface.benchmark import Settings, benchmark

    bundled = bundled_model()
    corrupted = tmp_path / "corrupted.tflite"
    data = bytearray(bundled.read_bytes())
    data[200_000:220_000] = bytes(20_000)
    corrupted.write_bytes(bytes(data))
    shutil.copy(card_path(bundled), card_path(corrupted))
    failed = tmp_path / "failed.tflite"  # an artifact whose own card records a failed parity check
    shutil.copy(bundled, failed)
    card = json.loads(card_path(bundled).read_text())
    card["metrics"]["parity_vs_source"]["passed"] = False
    card_path(failed).write_text(json.dumps(seal(failed, card)))
    payload = benchmark([corrupted, failed], Settings(data="synthetic:40", runs=2, warmup=1), tmp_path / "out")
    rows = payload["rows"]
    assert [r["status"] for r in rows] == ["validation failed", "validation failed"]
    assert "sha256" in rows[0]["error"] and "failed parity check" in rows[1]["error"]


def test_fault_09_a_card_that_lies_is_caught(tmp_path):
    liar = tmp_path / bundled_model().name
    shutil.copy(bundled_model(), liar)
    card = json.loads(card_path(bundled_model()).read_text())
    card["outputs"][0]["meaning"] = "probability that the face is female (index 0 of this output)"
    card_path(liar).write_text(json.dumps(seal(liar, card)))
    with pytest.raises(EdgefaceError, match="output gender.meaning"):
        edgeface.load(liar)
    code, output = cli("verify", liar)
    assert code == 1 and "NOT verified" in output


def _png_claiming(path, width, height):
    """A valid PNG header that says width x height (the pixels are never decoded)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytearray(data[12:29])  # type + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


def test_fault_10_inputs_that_could_run_code_hang_or_exhaust_memory(tmp_path):
    outside = tmp_path / "elsewhere.png"
    face_image(outside, 1)
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "faces.csv").write_text(f"path,gender,age\n../elsewhere.png,m,30\n{outside},f,20\n")
    one_line_error(*cli("data", "--data", f"csv:{tmp_path / 'set' / 'faces.csv'}"), "points outside")
    assert load_data(f"csv:{tmp_path / 'set' / 'faces.csv'}", allow_outside_root=True, check=False).splits
    csv = csv_dataset(tmp_path / "odd", 10)
    img = tmp_path / "odd" / "img"
    (img / "0.png").unlink()
    os.mkfifo(img / "0.png")  # reading it would block forever
    with open(img / "1.png", "wb") as f:  # a sparse 200 MiB file
        f.truncate(200 << 20)
    _png_claiming(img / "2.png", 13_000, 13_000)  # 169 megapixels
    bundle = load_data(f"csv:{csv}", dedup=True)
    reasons = dict(bundle.skipped)
    assert "not a regular file" in reasons[str(img / "0.png")]
    assert "above the 64 MiB limit" in reasons[str(img / "1.png")]
    assert "above the 40 MP budget" in reasons[str(img / "2.png")]
    code, output = cli("predict", img / "2.png", "--detect")
    assert code == 1 and f"{img / '2.png'}  error: 13000x13000 pixels, above the 40 MP budget" in output
    one_line_error(*cli("train", "--data", "synthetic:40", "--set", "x=!!python/object/apply:os.system [ls]"),
                   "not a plain YAML value")


def test_fault_11_one_writer_per_run_and_full_disks(run, tmp_path, monkeypatch):
    with run.writer():  # another process holds the run
        code, output = cli("train", "--resume", "--name", run.name, "--runs-dir", run.path.parent)
        one_line_error(code, output, f"(pid {os.getpid()}) is writing this run")
    import edgeface.utils as utils

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "report.json"))

    monkeypatch.setattr(utils, "atomic_path", full)
    code, output = cli("eval", run.path, "--output", tmp_path / "report.json")
    one_line_error(code, output, "report.json: No space left on device")
    assert "gender acc" in output  # the report was shown before the save failed


def test_fault_11b_a_run_name_is_one_folder_under_runs(tmp_path):
    for bad in ("../../x", "a/b", "..", ".hidden"):
        with pytest.raises(EdgefaceError, match="is not a run name"):
            TrainConfig.load(overrides={"name": bad, "runs_dir": str(tmp_path)})
    assert not any(tmp_path.iterdir())


def test_fault_10b_onnx_external_data_is_covered_by_the_hash(tmp_path):
    """Weights stored outside the .onnx are read by the runtime, so the content hash covers them: a tampered
    external data file no longer loads silently with changed outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    from edgeface.card import content_sha256

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    model = helper.make_model(graph)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
              size_threshold=0)
    before = content_sha256(path)
    assert before[1] == "file, and its external data files"
    data = bytearray((tmp_path / "m.data").read_bytes())
    data[0] ^= 1
    (tmp_path / "m.data").write_bytes(bytes(data))
    assert content_sha256(path)[0] != before[0]
    (tmp_path / "m.data").unlink()
    with pytest.raises(EdgefaceError, match="external data 'm.data' is not a file beside the model"):
        content_sha256(path)


def test_fault_08b_hostile_configs_and_specs_are_one_line_errors(tmp_path):
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text('a: &a ["x", "x", "x"]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n')
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 200 + "]" * 200 + "\n")
    for config, message in ((bomb, "anchors and aliases"), (deep, "nested deeper than")):
        code, output = cli("train", "--config", config)
        assert code == 2 and message in output and "Traceback" not in output
    code, output = cli("data", "--data", "synthetic:abc")
    assert code == 2 and "synthetic:N takes a number" in output


def test_fault_08c_a_card_that_leaves_out_an_output_is_refused(tmp_path):
    liar = tmp_path / bundled_model().name
    shutil.copy(bundled_model(), liar)
    card = json.loads(card_path(bundled_model()).read_text())
    card["outputs"] = [o for o in card["outputs"] if o["name"] == "gender"]
    card["model"]["tasks"] = card["model"]["spec"]["tasks"] = ["gender"]
    card_path(liar).write_text(json.dumps(seal(liar, card)))
    with pytest.raises(EdgefaceError, match="output 'age' the card does not describe"):
        edgeface.load(liar)


def test_fault_09b_a_resume_removes_what_a_killed_save_left(tmp_path):
    from edgeface.run import Run

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".best.keras.abc12345.keras").write_bytes(b"half a model")
    (folder / "best.keras").write_bytes(b"the model")
    (folder / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n")
    run = Run(folder)
    assert run.remove_partial_files() == [".best.keras.abc12345.keras"]
    run.trim_history(0)  # killed before the first checkpoint: epoch 0 is trained again, once
    assert (folder / "history.csv").read_text() == "epoch,loss\n" and (folder / "best.keras").is_file()


def test_fault_03b_a_fifo_in_a_recorded_split_is_an_error_not_a_hang(tmp_path):
    """Every path read goes through the regular-file check, recorded splits included: a FIFO would block open()."""
    from edgeface.data.images import load_images

    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    with pytest.raises(EdgefaceError, match="not a regular file"):
        load_images([fifo], 32)


def test_fault_08d_deep_and_huge_cards_are_refused_quickly(tmp_path):
    artifact = tmp_path / bundled_model().name
    shutil.copy(bundled_model(), artifact)
    card_path(artifact).write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(EdgefaceError, match="not valid JSON|nested too deeply"):
        edgeface.load(artifact)
    with open(card_path(artifact), "wb") as f:
        f.truncate(200 << 20)  # a sparse 200 MB file: refused by its size, never read
    with pytest.raises(EdgefaceError, match="too large for a model card"):
        edgeface.load(artifact)


def test_fault_03c_sigterm_ends_a_command_whose_worker_is_blocked(tmp_path):
    """SIGTERM while a worker thread is blocked in open() of a FIFO, inside a thread pool's `with` (whose exit
    joins it): the command prints one error line and ends with 143 instead of waiting forever."""
    import subprocess
    import sys
    import time

    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    script = f"""
import concurrent.futures, sys
from edgeface.cli import user_errors
@user_errors
def command():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        print("blocked", flush=True)
        pool.submit(open, {str(fifo)!r}).result()
command()
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "blocked"
        time.sleep(0.5)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            with open(fifo, "w"):  # release the blocked open() so the test's own process is clean
                pass
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "error: terminated (SIGTERM)", err


def test_fault_08e_a_tflite_file_with_a_custom_op_is_one_line(tmp_path):
    """A sealed TFLite file whose graph names an op LiteRT does not have fails at load with one line, in predict
    and verify alike (the interpreter used to fail on first use, with a RuntimeError traceback)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    source = bundled_model()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(source.read_bytes(), 0))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = "EdgefaceMystery", 1
    model.operatorCodes.append(code)
    last = model.subgraphs[0].operators[-1]
    last.opcodeIndex, last.builtinOptionsType, last.builtinOptions = len(model.operatorCodes) - 1, 0, None
    builder = flatbuffers.Builder(source.stat().st_size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    custom = tmp_path / source.name
    custom.write_bytes(bytes(builder.Output()))
    card_path(custom).write_text(json.dumps(seal(custom, json.loads(card_path(source).read_text()))))
    face_image(tmp_path / "face.png", 0, size=64)
    one_line_error(*cli("predict", "--model", custom, tmp_path / "face.png"), "unresolved custom op: EdgefaceMystery")
    code, output = cli("verify", "--skip-parent", custom)
    assert code == 1 and "EdgefaceMystery" in output and "NOT verified" in output and "Traceback" not in output


def test_fault_11c_out_of_range_settings_and_verdicts_on_too_little_data(tmp_path):
    """--tolerance agreement=1.5 and analyze --val-limit -5 are refused before any work; a 4-image validation split
    gets no confident int8 verdict; a single-gender split has no balanced accuracy (it used to print 30.00%)."""
    from edgeface.export.sensitivity import MIN_RESOLVING, verdict
    from edgeface.eval.metrics import gender_metrics
    from edgeface.export import ExportOptions
    from edgeface.runtime.formats import tolerances_for

    for bad, message in (({"agreement": 1.5}, "agreement=1.5 is out of range"), ({"atol": -1}, "out of range"),
                         ({"mae_shift": float("nan")}, "out of range"), ({"speed": 1}, "unknown tolerance")):
        with pytest.raises(EdgefaceError, match=message):
            ExportOptions(tolerances=bad)
        with pytest.raises(EdgefaceError, match=message):
            tolerances_for("int8", bad)
    code, output = cli("export", tmp_path, "--tolerance", "agreement=1.5")
    one_line_error(code, output, "agreement=1.5 is out of range")
    code, output = cli("analyze", tmp_path, "--calibration", "x", "--val-limit", "-5")
    assert code == 2 and "--val-limit" in output and "Traceback" not in output
    same = {"gender_accuracy": 0.75, "age_mae": 5.0}
    tiny = verdict(same, same, [], {"gender_accuracy": {"delta": 0, "low": 0, "high": 0, "real": False}}, n=4)
    assert tiny.startswith("only 4 validation images") and "cannot tell whether int8 holds" in tiny
    assert "nothing measurable" in verdict(same, same, [], None, n=MIN_RESOLVING)
    one_gender = gender_metrics([1, 1, 1], [True, False, True])
    assert one_gender["balanced_accuracy"] is None and one_gender["recall_female"] is None
    assert gender_metrics([0, 1], [False, True])["balanced_accuracy"] == 1.0


def test_fault_11d_a_run_that_has_not_finished_is_not_exported_quietly(run, tmp_path):
    """A run still being trained (its writer lock held by another process) or stopped before its final scoring (no
    metrics.json) is refused by export, with the way to export its best model so far; eval warns and scores it."""
    import subprocess
    import sys

    stopped = tmp_path / "stopped"
    shutil.copytree(run.path, stopped)
    (stopped / "metrics.json").unlink()
    one_line_error(*cli("export", stopped, "--output", tmp_path / "out"), "stopped before its final scoring")
    assert not (tmp_path / "out").exists()
    face_image(tmp_path / "face.png", 0, size=48)
    code, output = cli("predict", "--model", stopped, tmp_path / "face.png")
    assert code == 0 and "scoring its best model so far" in output, output

    training = tmp_path / "training"
    shutil.copytree(run.path, training)
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from edgeface.run import Run
with Run({str(training)!r}).writer():
    print("held", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line_error(*cli("export", training), f"is still being trained (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    assert Run.open(training).unfinished() is None  # the lock goes with the process


@pytest.mark.slow
def test_fault_12_multi_worker_training_has_one_writer(tmp_path):
    """Two workers on 127.0.0.1 (TF_CONFIG) sharing one runs folder, as on shared storage: the chief writes one
    complete run; worker 1 trains its share in a scratch copy, writes nothing durable and leaves no scratch."""
    import socket
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    args = [str(Path(sys.executable).parent / "edgeface"), "train", "--data", "synthetic:64", "--backbone", "compact_cnn",
            "--input-size", "32", "--weights", "none", "--epochs", "1", "--batch-size", "16", "--strategy",
            "multiworker", "--name", "mw", "--runs-dir", str(tmp_path / "runs")]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TMPDIR": str(scratch),
                                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                         "index": i}})})
             for i in range(2)]
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=300)[0])
        finally:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "done: runs" in outputs[0] or f"done: {tmp_path / 'runs' / 'mw'}" in outputs[0], outputs[0]
    assert "the chief wrote the run" in outputs[1] and "worker 1: training beside the chief" in outputs[1]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mw"]
    run = Run.open(tmp_path / "runs" / "mw")
    assert run.metrics is not None and run.unfinished() is None
    assert not list(scratch.glob(".edgeface-scratch-*"))  # the worker's scratch copy is gone


def test_fault_09c_a_killed_export_leaves_no_scratch_behind(tmp_path):
    """SIGKILL runs no cleanup: the scratch folder a killed export left in the output folder (a half-written
    SavedModel, say) is removed by the next export there once its process is gone; a live one's is kept."""
    import subprocess
    import sys

    from edgeface.utils import scratch_dir

    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", f"""
import os
from edgeface.utils import scratch_dir
with scratch_dir({str(out)!r}) as where:
    (where / "saved_model.pb").write_bytes(b"half")
    os._exit(9)  # as SIGKILL: no cleanup runs
"""])
    assert dead.returncode == 9 and len(list(out.glob(".edgeface-scratch-*"))) == 1
    live = subprocess.Popen([sys.executable, "-c", f"""
import time
from edgeface.utils import scratch_dir
with scratch_dir({str(out)!r}):
    print("in", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "in"
        with scratch_dir(out) as mine:
            left = {p.name for p in out.glob(".edgeface-scratch-*")}
            assert left == {mine.name, next(n for n in left if n.startswith(f".edgeface-scratch-{live.pid}-"))}
    finally:
        live.kill()
        live.wait()
    assert len(list(out.glob(".edgeface-scratch-*"))) == 1  # only the live one's, until it is gone too


def test_fault_05b_symlinked_csv_images_and_calibration_from_elsewhere(tmp_path):
    """A csv's images may be symlinks inside its folder (a dataset linked from elsewhere: not "outside the root");
    `..` still is; calibrate takes --allow-outside-root like every other data command, and says when --size asks
    for more images than the split has (issue 32 item 11)."""
    elsewhere = tmp_path / "elsewhere"
    rows = ["path,gender,age"]
    for i in range(12):
        face_image(elsewhere / f"{i}.png", i, size=48)
        (tmp_path / "set").mkdir(exist_ok=True)
        os.symlink(elsewhere / f"{i}.png", tmp_path / "set" / f"{i}.png")
        rows.append(f"{i}.png,{'m' if i % 2 else 'f'},{20 + i}")
    (tmp_path / "set" / "faces.csv").write_text("\n".join(rows) + "\n")
    code, output = cli("data", "--data", f"csv:{tmp_path / 'set' / 'faces.csv'}")
    assert code == 0 and "points outside" not in output, output
    absolute = tmp_path / "absolute.csv"
    absolute.write_text("\n".join(["path,gender,age"] + [f"{elsewhere / f'{i}.png'},m,{30 + i}" for i in range(12)]))
    one_line_error(*cli("calibrate", "--data", f"csv:{absolute}", "--name", "x", "--folder", tmp_path / "cal"),
                   "points outside")
    code, output = cli("calibrate", "--data", f"csv:{absolute}", "--name", "x", "--folder", tmp_path / "cal",
                       "--allow-outside-root", "--size", "50")
    assert code == 0 and "fewer than --size 50" in output and (tmp_path / "cal" / "x.txt").is_file(), output
