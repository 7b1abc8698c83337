"""The peak memory of one computation, for the benchmarks.

`peak_mib(run, device)` calls run() once and returns how much memory it needed, in MiB, on
top of what the process already held. Call it in a fresh process of its own (multiprocessing,
"spawn"), after setup and a warm-up call, so that neither other work nor one-time costs of a
first call (lazy imports, thread pools) are counted.

On CPU the figure is the increase of the process's resident-set high-water mark (the peak
RSS, what getrusage(RUSAGE_SELF).ru_maxrss reports) over its RSS just before the call. On
Linux the mark is first set back to the current RSS (writing 5 to /proc/self/clear_refs) and
read from /proc/self/status, because ru_maxrss itself is no use here: a spawned process
inherits its parent's high-water mark across exec, so its increase reads 0 until the child
outgrows the benchmark process. Elsewhere the increase of ru_maxrss is reported, with that
caveat. Memory that the allocator reuses from freed setup buffers is not counted. On CUDA
(a device starting with "cuda") the figure is torch.cuda.max_memory_allocated() during the
call less the memory allocated before it.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

import torch

MIB = 2**20


def sync(device: str) -> None:
    """Wait for the device's queued work, so that timings and memory figures cover it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _rss_bytes() -> tuple[int, int] | None:
    """(current RSS, RSS high-water mark) from /proc/self/status, where Linux gives them."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def _reset_high_water_mark() -> bool:
    """Linux >= 4.0: set the process's RSS high-water mark back to its current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return _rss_bytes() is not None
    except OSError:
        return False


def _peak_cuda_mib(run: Callable[[], object], device: str) -> float:
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / MIB


def _peak_rss_mib(run: Callable[[], object]) -> float:
    if _reset_high_water_mark():
        before, _ = _rss_bytes()
        run()
        return (_rss_bytes()[1] - before) / MIB
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * scale / MIB


def peak_mib(run: Callable[[], object], device: str) -> float:
    """The peak memory increase, in MiB, of calling run() once on `device` (see the module
    docstring): peak RSS over the RSS before the call on CPU, peak allocated on CUDA."""
    if device.startswith("cuda"):
        return _peak_cuda_mib(run, device)
    return _peak_rss_mib(run)
