"""Worker processes that never outlive the audit that started them.

A pool worker holds a model and its data (hundreds of MB). When the parent is killed
(SIGKILL, the OOM killer, a closed terminal) nothing tells the worker, so each one asks the
kernel to kill it when its parent dies (Linux's parent-death signal) and, everywhere, a
watchdog thread checks once a second that its parent is still the one that started it.
Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the parent alone decides
to stop them, so the user sees one line instead of a traceback per worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCHDOG_PERIOD_S = 1.0


def _ask_kernel_to_kill_on_parent_death() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog below still ends the worker


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(WATCHDOG_PERIOD_S)


def bind_to_parent(parent_pid: int) -> None:
    """Pool initializer: end this process when `parent_pid` ends; leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ask_kernel_to_kill_on_parent_death()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="salun-parent-watchdog", daemon=True).start()
