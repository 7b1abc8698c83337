"""Logs without a terminal: a line per tenth of the jobs and one per stage after them; each job's
own line only at DEBUG (`salun -v`). The stages' times are recorded, and `salun verify` ignores them."""

from __future__ import annotations

import logging
import re

import pytest
from helpers import small_spec

from audit.engine.progress import Progress
from audit.pipeline import run_audit
from audit.verify import compare


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "salun"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logged")
    return small_spec(folder, train={"epochs": 2}), folder


def test_a_fresh_audit_logs_a_line_per_tenth_then_each_stage_and_a_rerun_one_per_stage(spec, caplog):
    spec, folder = spec
    with caplog.at_level(logging.INFO, logger="salun"):
        fresh = run_audit(spec, folder / "fresh", show_progress=True)
    logged = lines(caplog)
    assert len(logged) <= 15
    tenths = [line for line in logged if re.match(r"\[\d+/24\] \d+ %: \d+ done, 0 failed, 0 from the cache; ", line)]
    assert 5 <= len(tenths) <= 9 and all("left" in line for line in tenths)
    assert "24 jobs: 0 from the cache, 24 run, 0 failed, in " in "\n".join(logged)
    assert {"computing metrics", "computing the retrain-equivalence tests", "writing report.html, junit.xml"} <= set(logged)
    assert not any("cache hit" in line or line.startswith("done") for line in logged)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="salun"):
        again = run_audit(spec, folder / "again", show_progress=True)
    logged = lines(caplog)
    assert len(logged) <= 6 and logged[1].startswith("24 jobs: 24 from the cache, 0 run, 0 failed")
    assert set(fresh["wall_time_s"]) == {"metrics", "equivalence"} and all(t > 0 for t in fresh["wall_time_s"].values())
    assert fresh["wall_time_s"] != again["wall_time_s"] and compare(fresh, again) == []  # timings aside, identical


def test_with_debug_each_job_has_one_line(spec, caplog):
    spec, folder = spec
    with caplog.at_level(logging.DEBUG, logger="salun"):
        run_audit(spec, folder / "verbose", show_progress=True)
    per_job = [line for line in lines(caplog) if re.match(r"\[\d+/24\] (cache hit:|done) ", line)]
    assert len(per_job) == 24 and len({line.split("]")[0] for line in per_job}) == 24


def test_the_summary_counts_failures_and_cache_hits_and_says_each_failure(caplog):
    progress = Progress(12, enabled=False)
    with caplog.at_level(logging.INFO, logger="salun"):
        progress.hit("observe a", "0" * 64)
        progress.hit("observe b", "1" * 64)
        for n in range(10):
            progress.start(f"train {n}")
            progress.finish(f"train {n}", 0.1, "ok" if n != 3 else "diverged (non-finite loss)")
        progress.close()
    logged = lines(caplog)
    assert "[6/12] train 3: diverged (non-finite loss)" in logged
    assert sum(bool(re.match(r"\[\d+/12\] \d+ %", line)) for line in logged) == 9  # 10 % ... 90 %
    assert any(line.startswith("[7/12] 50 %: 4 done, 1 failed, 2 from the cache; ") for line in logged)
    assert logged[-1].startswith("12 jobs: 2 from the cache, 9 run, 1 failed, in ")
