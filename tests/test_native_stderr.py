"""TensorFlow's and LiteRT's C++ start-up chatter stays off the terminal; every other native line and every
Python-level message still shows (issue 21: stderr noise on every command)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def test_known_noise_is_dropped_and_everything_else_passes():
    out = run("""
        import os, sys
        from edgeface.native_stderr import filter_native_stderr
        assert filter_native_stderr()
        os.write(2, b"I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"F0000 something.cc:1] Check failed: a real native error\\n")
        print("python says hello", file=sys.stderr)
        os.write(2, b"no newline at the end")
    """)
    assert out.returncode == 0, out.stderr
    assert "cuda drivers" not in out.stderr and "XNNPACK" not in out.stderr
    assert "Check failed: a real native error" in out.stderr and "python says hello" in out.stderr
    assert out.stderr.endswith("no newline at the end")


def test_tensorflow_starts_quietly():
    out = run("""
        from edgeface.native_stderr import filter_native_stderr
        filter_native_stderr()
        import tensorflow as tf
        print(int(tf.constant(1) + 1))
    """)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr
    assert out.stderr.strip() == "", out.stderr


def test_the_python_api_is_quiet_after_edgeface_quiet():
    """Without quiet() the bundled model's load prints LiteRT's XNNPACK line (so this test can fail); with it the
    Python API is as quiet as the command line (issue 32 item 12)."""
    code = """
        import numpy as np, edgeface
        {quiet}
        from edgeface.bundled import bundled_model
        edgeface.load(bundled_model()).predict(np.zeros((1, 128, 128, 3), np.uint8))
    """
    loud = run(code.format(quiet=""))
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr, loud.stderr
    quiet = run(code.format(quiet="assert edgeface.quiet()"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() == "", quiet.stderr
