"""Progress of long runs: a bar on a terminal; elsewhere a log line per tenth of the jobs to run,
with the counts so far, the time taken and an estimate of the rest, and one at the end. Each job's own line (a cache
hit, a job done) is logged at DEBUG, which `salun -v` shows.

A job that stands for several of the plan's jobs (a population trained as one) has a `GroupLabel`,
and counts for each of them.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from tqdm import tqdm

log = logging.getLogger("salun")
STEPS = 10  # summary lines over the jobs to run


class GroupLabel(str):
    """The label of a job that stands for `members` of the plan's jobs."""

    members: int

    def __new__(cls, text: str, members: int) -> GroupLabel:
        label = super().__new__(cls, text)
        label.members = members
        return label

    def __reduce__(self) -> tuple:
        return GroupLabel, (str(self), self.members)


def _count(label: str) -> int:
    return label.members if isinstance(label, GroupLabel) else 1


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.done = 0  # of the plan's jobs: cache hits, run and failed
        self.cached = 0
        self.failed = 0
        self.started = time.perf_counter()
        self.ran_from: float | None = None  # when the first job to run started
        self.next_step = 1
        stream = stream or sys.stderr
        self.bar = None
        if enabled and stream.isatty():
            self.bar = tqdm(total=total, unit="job", file=stream, dynamic_ncols=True)

    def _advance(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix_str(f"cache hits {self.cached}")

    def hit(self, label: str, key: str) -> None:
        self.cached += 1
        log.debug("[%d/%d] cache hit: %s [%s]", self.done + 1, self.total, label, key[:12])
        self._advance()

    def start(self, label: str) -> None:
        if self.ran_from is None:
            self.ran_from = time.perf_counter()
        if self.bar is not None:
            self.bar.set_description_str(label)

    def finish(self, label: str, seconds: float, status: str = "ok") -> None:
        position = self._position(label)
        self._advance(_count(label))
        if status != "ok":
            self.failed += _count(label)
            self._say(f"[{position}/{self.total}] {label}: {status}")
        else:
            log.debug("[%s/%d] done %s in %.2fs", position, self.total, label, seconds)
        self._summary()

    def _say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"salun: {message}")
        else:
            log.info("%s", message)

    def _summary(self) -> None:
        """Without a bar: a line each time another tenth of the jobs to run has ended."""
        to_run = self.total - self.cached
        ran = self.done - self.cached
        if self.bar is not None or ran >= to_run or ran * STEPS < self.next_step * to_run:
            return  # the last tenth is close()'s line
        self.next_step = ran * STEPS // to_run + 1
        elapsed = time.perf_counter() - (self.ran_from or self.started)
        log.info("[%d/%d] %d %%: %d done, %d failed, %d from the cache; %s, about %s left", self.done, self.total,
                 100 * ran // to_run, ran - self.failed, self.failed, self.cached, _duration(elapsed),
                 _duration(elapsed / ran * (to_run - ran)))

    def _position(self, label: str) -> str:
        """Which of the plan's jobs `label` is: "7", or "7-14" for a group of 8."""
        count = _count(label)
        return str(self.done + 1) if count == 1 else f"{self.done + 1}-{self.done + count}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        ran = self.done - self.cached
        self._say(f"{self.done} jobs: {self.cached} from the cache, {ran - self.failed} run, {self.failed} failed, "
                  f"in {_duration(time.perf_counter() - self.started)}")
