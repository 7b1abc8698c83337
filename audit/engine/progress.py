"""Progress of long runs: a bar on a terminal, plain log lines elsewhere. Cache hits are always said.

A job that stands for several of the plan's jobs (a population trained as one) has a `GroupLabel`,
and counts for each of them.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from tqdm import tqdm

log = logging.getLogger("salun")


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


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.done = 0
        self.cached = 0
        stream = stream or sys.stderr
        self.bar = None
        if enabled and stream.isatty():
            self.bar = tqdm(total=total, unit="job", file=stream, dynamic_ncols=True)

    def _say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"salun: {message}")
        else:
            log.info(message)

    def _advance(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix_str(f"cache hits {self.cached}")

    def hit(self, label: str, key: str) -> None:
        self.cached += 1
        self._say(f"[{self.done + 1}/{self.total}] cache hit: {label} [{key[:12]}]")
        self._advance()

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(label)
        else:
            log.info("[%s/%d] running %s", self._position(label), self.total, label)

    def finish(self, label: str, seconds: float, status: str = "ok") -> None:
        if self.bar is None:
            log.info("[%s/%d] done %s in %.2fs%s", self._position(label), self.total, label, seconds,
                     "" if status == "ok" else f" ({status})")
        elif status != "ok":
            self._say(f"{label}: {status}")
        self._advance(_count(label))

    def _position(self, label: str) -> str:
        """Which of the plan's jobs `label` is: "7", or "7-14" for a group of 8."""
        count = _count(label)
        return str(self.done + 1) if count == 1 else f"{self.done + 1}-{self.done + count}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self._say(f"{self.done} jobs, {self.cached} from the cache")
