"""Known start-up chatter of TensorFlow's and LiteRT's C++ code, kept off the terminal unless --verbose.

TensorFlow 2.21 writes its absl logs (oneDNN notice, "Could not find cuda drivers", cuInit errors, converter
statistics) straight to file descriptor 2 and ignores TF_CPP_MIN_LOG_LEVEL for them (tensorflow/tensorflow
#100442); LiteRT prints "Created TensorFlow Lite XNNPACK delegate" on every interpreter. `filter_native_stderr()`
points fd 2 at a pipe read by a thread that forwards every line at once, except lines matching NOISE. Python's
own stderr (warnings, progress bars, our messages) keeps writing to the terminal directly, so its order and tty
behaviour do not change. The command line installs it unless --verbose is given (then everything shows)."""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile("|".join((
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"cuda_(platform|executor|dnn|blas|fft)\.cc",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow",
    r"Created TensorFlow Lite XNNPACK delegate for CPU",
    r"Initialized TensorFlow Lite runtime",
    r"fully_quantize: \d+, inference_type: \d+, input_inference_type",
    r"Statistics for quantized inputs were expected",
    r"Ignored output_format\.|Ignored drop_control_dependency\.",
    r"Reading SavedModel (from|with tags)|Reading meta graph with tags|Restoring SavedModel bundle",
    r"SavedModel load for tags .* Status: success",
    r"Skipping registering GPU devices",
)))


def filter_native_stderr() -> bool:
    """Installs the filter once per process; False (nothing changed) when fd 2 cannot be redirected."""
    global _installed
    if _installed:
        return True
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except (OSError, ValueError, AttributeError):
        return False
    # Python-level writes go to the real stderr; only native writes to fd 2 reach the pipe.
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    pump = threading.Thread(target=_pump, args=(read_end, terminal), name="native-stderr", daemon=True)
    pump.start()

    def restore():  # at exit: closing the pipe's last writer lets the thread forward what is left, then end
        os.dup2(terminal, 2)
        pump.join(timeout=2)

    atexit.register(restore)
    _installed = True
    return True


_installed = False


def _pump(read_end: int, terminal: int) -> None:
    pending = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not NOISE.search(line.decode("utf-8", "replace")):
                os.write(terminal, line + b"\n")
    if pending:
        os.write(terminal, pending)


def quiet_unless_verbose(argv=None) -> None:
    """The command line's rule, for the console script and tools/*.py alike: filter unless --verbose is given."""
    if "--verbose" not in (sys.argv[1:] if argv is None else argv):
        filter_native_stderr()
