"""The GPU's busy share while a run works, and the markdown tables of benchmarks/gpu_check.py."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable

INTERVAL_S = 0.1


def _reader(device: str) -> tuple[str, Callable[[], float] | None]:
    """How utilisation is read: pynvml if it imports, else nvidia-smi, else not at all."""
    if not device.startswith("cuda"):
        return "none (no GPU)", None
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return "pynvml", lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # no NVML binding or no driver library: fall back to the command line tool
        pass
    if shutil.which("nvidia-smi"):
        command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "--id=0"]
        return "nvidia-smi", lambda: float(subprocess.run(command, capture_output=True, text=True,
                                                          timeout=5).stdout.split()[0])
    return "none (neither pynvml nor nvidia-smi)", None


class BusySampler:
    """`with BusySampler(device) as busy:` polls GPU 0's utilisation every INTERVAL_S in a thread."""

    def __init__(self, device: str):
        self.method, self._read = _reader(device)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.samples.append(self._read())
            except Exception:  # a sample that fails to read is left out; the count says how many came
                pass

    def __enter__(self) -> BusySampler:
        if self._read is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict:
        mean = sum(self.samples) / len(self.samples) if self.samples else None
        return {"method": self.method, "samples": len(self.samples), "mean_percent": mean,
                "max_percent": max(self.samples, default=None)}


def _number(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}e}" if isinstance(value, float) and 0 < abs(value) < 1e-2 else f"{value:.{digits}f}"


def _agreement(section: dict) -> list[str]:
    lines = [f"(a) CPU against {section['against']}: max |a − b| / max(1, max |a|); tolerance {section['tolerance']}; "
             f"backend {section['backend_flags']}", "",
             "| model | steps / diffusion steps | logits | weights | samples | within | s cpu / s device |",
             "|---|---|---|---|---|---|---|"]
    for row in section["rows"]:
        seconds = " / ".join(_number(s) for s in row["seconds"].values())
        steps = row.get("steps", row.get("diffusion_steps"))
        lines.append(f"| {row['kind']} {row['arch']} | {steps} | {_number(row.get('logits'))} | "
                     f"{_number(row['weights'])} | {_number(row.get('samples'))} | {row['within_tolerance']} | {seconds} |")
    return lines


def _verify(section: dict) -> list[str]:
    verify, cpu = section["verify"], section["against_cpu"]
    return [f"(b) audit on {section['audit_device']} ({_number(section['audit_seconds'])} s); `salun verify`: exit "
            f"{verify['exit_code']} ({_number(verify['seconds'])} s): {verify['output'].splitlines()[-1:]}", "",
            f"Same spec on the CPU: {cpu['differences']} differences, {cpu['numbers_differing']} of them numbers "
            f"(largest {_number(cpu['max_abs_difference'])}), {cpu['outside_gpu_tolerance']} outside verify's GPU tolerance"]


def _populations(title: str, section: dict, key: str) -> list[str]:
    if not section.get("available"):
        return [f"{title}: {section.get('note')}"]
    lines = [f"{title}: fastcifar {section['fast_widths']}, {section['images']} images, {section['epochs']} epochs; "
             "jobs only: less the fixed cost of the same run with every job cached", "",
             f"| {key} | N | seconds | models trained | models / minute | models / minute, jobs only "
             "| GPU busy % (mean, samples, via) |",
             "|---|---|---|---|---|---|---|"]
    for row in section["rows"]:
        if "models_trained" not in row:
            lines.append(f"| {row.get('jobs', row.get('trainer'))} | {row.get('n', '')} | "
                         f"{row.get('skipped') or row.get('error') or ('exit ' + str(row.get('exit_code')) + ': ' + str(row.get('output', '')).replace(chr(10), ' '))} | | | | |")
            continue
        busy = row["gpu_busy"]
        lines.append(f"| {row.get('jobs', row.get('trainer'))} | {row.get('n', section.get('population'))} | "
                     f"{_number(row['seconds'])} | {row['models_trained']} | {_number(row['models_per_minute'], 1)} | "
                     f"{_number(row['models_per_minute_jobs_only'], 1)} | "
                     f"{_number(busy['mean_percent'], 0)}, {busy['samples']}, {busy['method']} |")
    return lines


def markdown(document: dict) -> str:
    sections = document["sections"]
    lines = [f"# salun GPU check ({'dry run, ' if document['dry_run'] else ''}{document['device']}, "
             f"{document.get('gpu') or 'no GPU'}, torch {document['torch']}, {_number(document.get('seconds'))} s)", ""]
    render = {"a_device_agreement": _agreement, "b_verify": _verify,
              "c_gpu_executor": lambda s: _populations(f"(c) executor {s.get('executor')}, {s.get('knob')}", s, "jobs"),
              "d_vectorised_trainer": lambda s: _populations("(d) trainer", s, "trainer")}
    for name, section in sections.items():
        lines += [f"{name}: ERROR {section['error']}"] if "error" in section else render[name](section)
        lines.append("")
    return "\n".join(lines)
