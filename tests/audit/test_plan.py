import torch

from audit.data.datasets import prepare_data
from audit.engine.job import OBSERVE, TRAIN, UNLEARN, Job
from audit.tasks.classification.plan import build_plan
from helpers import small_spec

CPU = torch.device("cpu")


def plan_of(tmp_path, **overrides):
    spec = small_spec(tmp_path, **overrides)
    return build_plan(spec, prepare_data(spec), CPU)


def test_plan_has_every_population_and_orders_inputs_first(tmp_path):
    plan = plan_of(tmp_path)
    kinds = [job.kind for job in plan.jobs]
    assert kinds.count(TRAIN) == 4 and kinds.count(UNLEARN) == 8 and kinds.count(OBSERVE) == 12
    seen = set()
    for job in plan.jobs:
        assert set(job.inputs) <= seen
        seen.add(job.key)
    assert len(seen) == len(plan.jobs)


def test_keys_change_with_what_a_job_depends_on_and_nothing_else(tmp_path):
    base = plan_of(tmp_path)
    other_forget = plan_of(tmp_path, forget={"fraction": 0.2})
    other_lr = plan_of(tmp_path, train={"lr": 0.01})
    other_hparam = plan_of(tmp_path, unlearners={**small_spec(tmp_path).to_dict()["unlearners"], "finetune": {"epochs": 3}})
    renamed = plan_of(tmp_path, audit={"name": "renamed"})
    assert base.originals == other_forget.originals  # originals never see the forget set
    assert base.retrains != other_forget.retrains
    assert base.originals != other_lr.originals
    assert base.unlearned["finetune"] != other_hparam.unlearned["finetune"]
    assert base.unlearned["identity"] == other_hparam.unlearned["identity"]
    assert [j.key for j in base.jobs] == [j.key for j in renamed.jobs]


def test_the_code_version_is_part_of_the_key():
    job = Job(TRAIN, {"seed": 0}, (), "x", {"salun": "a"})
    assert job.key != Job(TRAIN, {"seed": 0}, (), "x", {"salun": "b"}).key
    assert job.key == Job(TRAIN, {"seed": 0}, (), "label only", {"salun": "a"}).key
