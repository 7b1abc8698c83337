"""Auditing class-conditional generators (diffusion models), judged by a classifier."""

from audit.core.contracts import TaskFamily
from audit.core.registry import TASKS
from audit.tasks.generation.plan import build_generation_plan
from audit.tasks.generation.results import build_generation_results

GENERATION = TASKS.register("generation")(TaskFamily(plan=build_generation_plan, results=build_generation_results))
