"""Progress of long runs: a bar on a terminal, plain log lines elsewhere. Cache hits are always said."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from tqdm import tqdm

log = logging.getLogger("salun")


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

    def _advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"cache hits {self.cached}")

    def hit(self, label: str, key: str) -> None:
        self.cached += 1
        self._say(f"[{self.done + 1}/{self.total}] cache hit: {label} [{key[:12]}]")
        self._advance()

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(label)
        else:
            log.info("[%d/%d] running %s", self.done + 1, self.total, label)

    def finish(self, label: str, seconds: float, status: str = "ok") -> None:
        if self.bar is None:
            log.info("[%d/%d] done %s in %.2fs%s", self.done + 1, self.total, label, seconds,
                     "" if status == "ok" else f" ({status})")
        elif status != "ok":
            self._say(f"{label}: {status}")
        self._advance()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self._say(f"{self.done} jobs, {self.cached} from the cache")
