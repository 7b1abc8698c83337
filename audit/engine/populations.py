"""Which models train together when [train] trainer = "vectorised".

The plan fixes each model's cohort (`cohorts`): models of one population in seed order, at most
`population_size` at a time, and only models with equally large training sets (shadow models'
sets differ in size, so a shadow trains with the shadows whose sets match its size, or alone).
At execution the pending members of one cohort become one group job (`group_populations`), so
that a cohort is trained once, whichever executor runs it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from audit.config.spec import Spec, canonical_json
from audit.engine.job import TRAIN_POPULATION, TRAIN_VECTORISED, Job
from audit.engine.progress import GroupLabel

MEMBER_FIELDS = ("seed", "shadow")  # the parameters that tell the models of one cohort apart


def cohorts(members: Sequence[Any], sizes: Sequence[Hashable], population_size: int) -> list[list[Any]]:
    """`members` (in plan order) cut into cohorts: equal `sizes` only, at most `population_size` each."""
    by_size: dict[Hashable, list[Any]] = {}
    for member, size in zip(members, sizes, strict=True):
        by_size.setdefault(size, []).append(member)
    return [same[start:start + population_size] for same in by_size.values()
            for start in range(0, len(same), population_size)]


def group_populations(pending: list[Job], spec: Spec) -> list[Job]:
    """`pending` with the members of each cohort, where more than one is pending, replaced by one
    group job in the place of its first member (every job that reads a member comes later)."""
    if spec.train.trainer != "vectorised":
        return pending
    groups: dict[str, list[Job]] = {}
    for job in pending:
        if job.kind == TRAIN_VECTORISED:
            groups.setdefault(_cohort_of(job), []).append(job)
    jobs = []
    for job in pending:
        members = groups.get(_cohort_of(job), []) if job.kind == TRAIN_VECTORISED else []
        if len(members) <= 1:
            jobs.append(job)
        elif job is members[0]:
            jobs.append(_group(members))
    return jobs


def _cohort_of(job: Job) -> str:
    shared = {name: value for name, value in job.params.items() if name not in MEMBER_FIELDS}
    return canonical_json({"params": shared, "code": job.code})


def _group(members: list[Job]) -> Job:
    first = members[0]
    params = {**{name: value for name, value in first.params.items() if name not in MEMBER_FIELDS},
              "members": [job.key for job in members]}
    inputs = tuple(dict.fromkeys(key for job in members for key in job.inputs))
    label = GroupLabel(f"train {first.params['population']} ×{len(members)} ({_which(members)})", len(members))
    return Job(TRAIN_POPULATION, params, inputs, label, first.code, members=tuple(members))


def _which(members: list[Job]) -> str:
    """"seeds 0-7", "seeds 0, 2, 5" or "shadows 3-4"."""
    field = "shadow" if "shadow" in members[0].params else "seed"
    numbers = [job.params[field] for job in members]
    contiguous = all(isinstance(n, int) for n in numbers) and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    span = f"{numbers[0]}-{numbers[-1]}" if contiguous else ", ".join(map(str, numbers))
    return f"{field}s {span}"
