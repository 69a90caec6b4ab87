"""SIGTERM ends every command: it unwinds like Ctrl-C (staging files removed, nothing half-written left), and a
process whose unwinding waits on a worker thread blocked in the kernel still ends (issue 29 item 3: open() of a FIFO
inside a thread pool's `with` made `eval` and `export` wait forever; only SIGKILL ended them)."""
from __future__ import annotations

import os
import signal
import sys
import threading

GRACE_S = 5.0  # time the unwinding gets before the process ends without it


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread."""


def install() -> None:
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum, frame):
    print("error: terminated (SIGTERM)", file=sys.stderr, flush=True)
    timer = threading.Timer(GRACE_S, exit_now, args=(128 + signum,))
    timer.daemon = True
    timer.start()
    raise Terminated(128 + signum)


def exit_now(code: int) -> None:
    """Ends the process without joining threads (a thread blocked in open() never joins)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
