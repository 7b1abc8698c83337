"""Auditing classifiers: the default task family."""

from audit.core.contracts import TaskFamily
from audit.core.registry import TASKS
from audit.tasks.classification.plan import build_plan
from audit.tasks.classification.results import build_results

CLASSIFICATION = TASKS.register("classification")(TaskFamily(plan=build_plan, results=build_results))
