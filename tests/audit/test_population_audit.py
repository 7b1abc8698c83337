"""[train] trainer = "vectorised" through the plan, the executor and the store."""

import logging
import pickle
import shutil

import pytest
import torch

from audit.config.spec import spec_from_dict
from audit.core.errors import Diverged, SalunInputError
from audit.data.datasets import prepare_data
from audit.data.shadows import shadow_train_positions
from audit.engine.code_digest import closure
from audit.engine.execute import execute
from audit.engine.job import TRAIN, TRAIN_POPULATION, TRAIN_VECTORISED
from audit.engine.populations import cohorts, group_populations
from audit.engine.progress import GroupLabel, Progress
from audit.engine.store import Store
from audit.pipeline import run_audit
from audit.tasks.classification import population_jobs
from audit.tasks.classification.plan import build_plan
from helpers import small_config, small_spec, write_toml

CPU = torch.device("cpu")
VECTORISED = {"trainer": "vectorised", "population_size": 2}
SMALL = {"audit": {"seeds": 3}, "unlearners": {"identity": {}, "retrain": {}}}


def plan_of(spec):
    return build_plan(spec, prepare_data(spec), CPU)


def trained(plan):
    return [job for job in plan.jobs if job.kind in (TRAIN, TRAIN_VECTORISED)]


def test_cohorts_hold_equal_sizes_in_order_and_at_most_population_size():
    assert cohorts(list("abcde"), [1] * 5, 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert cohorts(list("abcd"), [5, 6, 5, 5], 2) == [["a", "c"], ["d"], ["b"]]


def test_the_plan_fixes_each_models_cohort_and_leaves_per_model_jobs_as_they_were(tmp_path):
    attacks = {"run": ["lira"], "lira": {"shadows": 8}}
    per_model = plan_of(small_spec(tmp_path, **SMALL, attacks=attacks))
    vectorised = plan_of(small_spec(tmp_path, **SMALL, attacks=attacks, train=VECTORISED))
    assert {job.kind for job in trained(per_model)} == {TRAIN}
    assert not any("cohort" in job.params or "trainer" in job.params["train"] for job in trained(per_model))
    assert {job.kind for job in trained(vectorised)} == {TRAIN_VECTORISED}
    assert not {job.key for job in trained(per_model)} & {job.key for job in trained(vectorised)}
    by_label = {job.label: job.params for job in trained(vectorised)}
    assert by_label["retrain seed=1"]["cohort"] == [{"seed": 0}, {"seed": 1}]
    assert by_label["original seed=2"]["cohort"] == [{"seed": 2}]
    spec = small_spec(tmp_path, **SMALL, attacks=attacks, train=VECTORISED)
    data = prepare_data(spec)
    for label, params in by_label.items():
        if params["population"] == "shadow":
            sizes = {len(shadow_train_positions(data, m["shadow"], 8, spec.data.seed)) for m in params["cohort"]}
            assert len(sizes) == 1 and {"seed": label, "shadow": params["shadow"]} in params["cohort"]


def test_pending_members_of_a_cohort_become_one_group_before_any_job_that_reads_them(tmp_path):
    spec = small_spec(tmp_path, **SMALL, train=VECTORISED)
    plan = plan_of(spec)
    grouped = group_populations(plan.jobs, spec)
    groups = [job for job in grouped if job.kind == TRAIN_POPULATION]
    assert [job.label for job in groups] == ["train original ×2 (seeds 0-1)", "train retrain ×2 (seeds 0-1)"]
    assert all(isinstance(job.label, GroupLabel) and job.label.members == 2 for job in groups)
    sent = pickle.loads(pickle.dumps(groups[0]))  # as a worker process receives it
    assert sent.label.members == 2 and [job.key for job in sent.members] == [job.key for job in groups[0].members]
    assert sum(len(job.members) or 1 for job in grouped) == len(plan.jobs)
    position = {key: i for i, job in enumerate(grouped) for key in [job.key, *(m.key for m in job.members)]}
    assert all(position[key] < position[job.key] for job in grouped for key in job.inputs)
    without_seed_0 = [job for job in plan.jobs if job.label != "original seed=0"]
    alone = [job for job in group_populations(without_seed_0, spec) if "original" in job.label and
             job.kind != "observe"]
    assert [(job.kind, job.label) for job in alone] == [(TRAIN_VECTORISED, "original seed=1"),
                                                         (TRAIN_VECTORISED, "original seed=2")]
    per_model = small_spec(tmp_path, **SMALL)
    assert group_populations(plan_of(per_model).jobs, per_model) == plan_of(per_model).jobs


def test_a_group_counts_for_each_of_its_members(caplog):
    progress = Progress(5, enabled=False)
    with caplog.at_level(logging.DEBUG, logger="salun"):
        progress.start(GroupLabel("train retrain ×3 (seeds 0-2)", 3))
        progress.finish(GroupLabel("train retrain ×3 (seeds 0-2)", 3), 1.0)
        progress.hit("observe", "0" * 64)
    assert progress.done == 4 and "[1-3/5] done train retrain ×3" in caplog.text


def test_the_vectorised_trainers_code_is_in_the_key_of_the_models_it_trains():
    assert {"audit.nn.population", "audit.tasks.classification.jobs"} <= set(
        closure("audit.tasks.classification.population_jobs"))
    assert "audit.nn.population" not in closure("audit.tasks.classification.jobs")


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    """The small audit run per model and vectorised: {trainer: (spec, results)}."""
    runs = {}
    for trainer, train in (("per_model", {}), ("vectorised", VECTORISED)):
        folder = tmp_path_factory.mktemp(trainer)
        config = small_config(**SMALL, train=train)
        config["audit"] |= {"store": str(folder / "store"), "reports": ["junit"]}
        spec = spec_from_dict(config, base_dir=folder)
        runs[trainer] = spec, run_audit(spec, folder / "out", show_progress=False)
    return runs


def test_each_model_is_its_own_artifact_and_a_rerun_is_all_cache_hits(audits):
    spec, _ = audits["vectorised"]
    per_model = audits["per_model"][0]
    weights = set(Store(per_model.audit.store).tensors(plan_of(per_model).originals[0]))
    plan, store = plan_of(spec), Store(spec.audit.store)
    for job in trained(plan):
        meta = store.meta(job.key)
        assert (meta["kind"], meta["label"], meta["status"]) == (TRAIN_VECTORISED, job.label, "ok")
        assert meta["params"]["cohort"] == job.params["cohort"] and len(meta["losses"]) == spec.train.epochs
        assert set(store.tensors(job.key)) == weights
    progress = Progress(len(plan.jobs), enabled=False)
    execute(plan.jobs, spec, store, progress=progress)
    assert progress.cached == len(plan.jobs)


def test_results_are_those_of_per_model_training(audits):
    per_model, vectorised = audits["per_model"][1], audits["vectorised"][1]
    for method, row in per_model["metrics"].items():
        for name in ("UA", "RA", "TA", "MIA"):
            assert vectorised["metrics"][method][name]["mean"] == pytest.approx(row[name]["mean"], abs=1e-3)
    assert vectorised["verdict"] == per_model["verdict"]


def test_a_missing_member_is_retrained_with_its_cohort_to_the_same_bits(audits):
    spec, _ = audits["vectorised"]
    plan, store = plan_of(spec), Store(spec.audit.store)
    job = next(job for job in trained(plan) if job.label == "retrain seed=1")
    before = store.tensors(job.key)
    shutil.rmtree(store.path(job.key))
    fresh = Store(spec.audit.store)
    progress = Progress(len(plan.jobs), enabled=False)
    execute(plan.jobs, spec, fresh, progress=progress)
    assert progress.cached == len(plan.jobs) - 1
    after = fresh.tensors(job.key)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_a_diverged_member_fails_the_audit_by_name_after_the_others_are_stored(tmp_path, monkeypatch):
    spec = small_spec(tmp_path, **SMALL, train=VECTORISED)
    real = population_jobs.train_population

    def second_diverges(*args, **kwargs):
        outcomes = real(*args, **kwargs)
        return [outcomes[0], Diverged("loss became nan during training")]

    monkeypatch.setattr(population_jobs, "train_population", second_diverges)
    plan, store = plan_of(spec), Store(spec.audit.store)
    with pytest.raises(SalunInputError, match=r"^train: original seed=1 diverged \(loss became nan"):
        execute(plan.jobs, spec, store)
    originals = {job.label: job.key for job in trained(plan)}
    assert store.has(originals["original seed=0"]) and not store.has(originals["original seed=1"])


@pytest.mark.parametrize("train, message", [
    ({"trainer": "vmap"}, "train.trainer: Input should be 'per_model' or 'vectorised'"),
    ({"population_size": 8}, "train.population_size: only used when train.trainer = 'vectorised'"),
    ({"trainer": "vectorised", "population_size": 0}, "train.population_size: Input should be greater than"),
])
def test_config_errors_name_the_field(cli, tmp_path, train, message):
    config = write_toml(tmp_path / "audit.toml", small_config(train=train))
    code, _, err = cli("validate", str(config))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
