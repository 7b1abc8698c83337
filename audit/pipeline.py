"""One audit, end to end: spec -> plan -> executor -> store -> metrics -> results -> report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from audit.data import prepare_data
from audit.execute import execute
from audit.plan import build_plan
from audit.progress import Progress
from audit.results import build_results, load_results, write_results
from audit.spec import Spec
from audit.store import Store
from audit.training import resolve_device
from reports.html import write_html

log = logging.getLogger("salun")


def run_audit(
    spec: Spec,
    out: str | Path = "salun-report",
    device: str | None = None,
    workers: int = 1,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the audit a spec describes and write results.json and report.html under `out`."""
    out = Path(out)
    resolved = resolve_device(device or spec.audit.device)
    data = prepare_data(spec)
    store = Store(spec.audit.store)
    plan = build_plan(spec, data, resolved)
    log.info(
        "audit %s: %d jobs, %d seeds, methods %s, on %s (store %s)",
        spec.audit.name, len(plan.jobs), len(plan.seeds), ", ".join(spec.unlearners), resolved, store.root,
    )
    execute(plan.jobs, spec, store, workers, Progress(len(plan.jobs), enabled=show_progress))
    if spec.attacks.run:
        log.info("scoring membership inference: %s on %d targets, %d bootstrap resamples each",
                 ", ".join(spec.attacks.run), 2 + len(plan.unlearned), spec.attacks.bootstrap)
    write_results(build_results(spec, data, plan, store, resolved), out / "results.json")
    results = load_results(out / "results.json")  # reports see exactly what the file holds
    write_html(results, out / "report.html")
    log.info("wrote %s and %s", out / "results.json", out / "report.html")
    return results
