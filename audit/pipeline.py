"""One audit, end to end: spec -> plan -> executor -> store -> metrics -> results -> report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from audit.data.datasets import prepare_data
from audit.engine.execute import check_executor, execute
from audit.engine.manifest import executor_used
from audit.engine.options import ExecutorChoice
from audit.engine.progress import Progress
from audit.core.registry import TASKS, allow_plugins
from audit.results.document import load_results, write_results
from audit.config.spec import Spec
from reports.write import WRITERS, write_reports
from audit.engine.store import Store
from audit.nn.training import resolve_device
from audit.core.files import writing
from audit.engine.writable import require_writable

log = logging.getLogger("salun")


def run_audit(
    spec: Spec,
    out: str | Path = "salun-report",
    device: str | None = None,
    executor: ExecutorChoice = ExecutorChoice(),
    show_progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the audit a spec describes and write results.json and the reports of
    `audit.reports` under `out`; `executor` is what the command line chose of where the jobs run
    (the spec's [audit] decides the rest), `command` how it was invoked, for the manifest."""
    out = Path(out)
    allow_plugins(spec.audit.plugins)  # another spec may have been validated since this one
    resolved = resolve_device(device or spec.audit.device)
    options = executor.resolve(spec.audit)
    check_executor(options, resolved)
    data = prepare_data(spec)
    store = Store(spec.audit.store)
    family = TASKS.get(spec.task.kind, "task.kind")
    plan = family.plan(spec, data, resolved)
    require_writable(out, "--out")  # after the spec's data is known to load: bad input leaves no folder behind
    if not all(store.has(job.key) for job in plan.jobs):
        require_writable(store.scratch, "audit.store")
    log.info(
        "audit %s: %d jobs, %d seeds, methods %s, on %s with the %s executor (store %s)",
        spec.audit.name, len(plan.jobs), len(plan.seeds), ", ".join(spec.unlearners), resolved, options.executor,
        store.root,
    )
    execute(plan.jobs, spec, store, options, Progress(len(plan.jobs), enabled=show_progress))
    _record_use(store, spec, plan.jobs)
    if spec.attacks.run:
        log.debug("membership inference: %s on %d targets, %d bootstrap resamples each",
                  ", ".join(spec.attacks.run), 2 + len(plan.unlearned), spec.attacks.bootstrap)
    results = family.results(spec, data, plan, store, resolved, command)
    results["manifest"]["executor"] = executor_used(options, resolved)
    with writing("--out", out / "results.json", "every job is kept in the store: rerun to write the results"):
        write_results(results, out / "results.json")
    results = load_results(out / "results.json")  # reports see exactly what the file holds
    if spec.audit.reports:
        log.info("writing %s", ", ".join(WRITERS[name][2] for name in sorted(spec.audit.reports,
                                                                               key=lambda name: name == "pdf")))
    written = [out / "results.json"] + write_reports(results, out, spec.audit.reports)
    log.info("wrote %s", ", ".join(str(path) for path in written))
    return results


def _record_use(store: Store, spec: Spec, jobs: list) -> None:
    """Tell `salun store gc` which artifacts this audit needs; a read-only store cannot be told."""
    try:
        store.record_use(f"{spec.audit.name}-{spec.digest()[:16]}", [job.key for job in jobs])
    except OSError as error:
        log.warning("could not record this audit's artifacts in %s (%s): `salun store gc` may remove them",
                    store.root, error.strerror or error)
