"""Each method does what its name says, on the small conformance problem."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from audit.data.datasets import prepare_data
from audit.engine.execute import CPU_THREADS_PER_JOB
from audit.tasks.classification.jobs import make_task, new_model
from audit.pipeline import run_audit
from audit.engine.job import SALIENCY
from audit.tasks.classification.plan import build_plan
from audit.core.registry import UNLEARNERS
from audit.core.seeds import torch_generator
from audit.config.spec import spec_from_dict
from audit.engine.store import Store
from unlearners.boundary_shrink import fgsm_neighbour_labels
from unlearners.checks import CHECK_SPEC, _problem, _task
from unlearners.influence import per_sample_gradients
from unlearners.l1_sparse import l1_norm
from unlearners.saliency import forget_gradient, saliency_mask
from unlearners.salun_soft import soft_threshold_toward
from unlearners.scrub import distillation_kl


def unlearned_by(name, **params):
    spec, data, original = _problem()
    unlearner = UNLEARNERS.get(name)(**params)
    task = _task(unlearner, spec, data, 0)
    return original, unlearner.unlearn(original, task), task


def loss_on(model, subset):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(subset.x), subset.y).item()


def accuracy_on(model, subset):
    model.eval()
    with torch.no_grad():
        return (model(subset.x).argmax(1) == subset.y).float().mean().item()


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_saliency_mask_is_the_global_top_fraction_of_the_forget_gradient():
    spec, data, original = _problem()
    gradient = forget_gradient(original, data.forget_set, batch_size=7)
    assert all(torch.allclose(gradient[k], v, atol=1e-6)
               for k, v in forget_gradient(original, data.forget_set, batch_size=1000).items())
    masks = saliency_mask(gradient, 0.3)
    chosen = torch.cat([m.flatten() for m in masks.values()])
    magnitude = torch.cat([g.abs().flatten() for g in gradient.values()])
    assert int(chosen.sum()) == round(0.3 * chosen.numel())
    assert magnitude[chosen].min() >= magnitude[~chosen].max()
    assert all(m.any() for m in masks.values()) or len(masks) > 1  # global, not per layer
    assert int(torch.cat([m.flatten() for m in saliency_mask(gradient, 1.0).values()]).sum()) == chosen.numel()


def test_hard_salun_leaves_every_non_salient_weight_bit_identical():
    original, model, task = unlearned_by("salun", mask_ratio=0.3)
    masks = saliency_mask(forget_gradient(original, task.forget), 0.3)
    before, after = dict(original.named_parameters()), dict(model.named_parameters())
    for name, keep in masks.items():
        assert torch.equal(before[name][~keep], after[name][~keep]), name
    assert any(not torch.equal(before[n][k], after[n][k]) for n, k in masks.items())
    assert UNLEARNERS.get("salun")(mask_ratio=0.3).verify(original, model, task) == []


def test_gradient_only_salun_lets_weight_decay_move_non_salient_weights():
    original, model, task = unlearned_by("salun", mask_ratio=0.3, mask_semantics="gradient_only")
    assert UNLEARNERS.get("salun")(mask_ratio=0.3).verify(original, model, task)


@pytest.mark.parametrize("semantics", ["hard", "gradient_only"])
def test_salun_with_every_weight_salient_is_random_labelling_exactly(semantics):
    _, salun, _ = unlearned_by("salun", mask_ratio=1.0, mask_semantics=semantics, epochs=2, lr=0.02)
    _, random_label, _ = unlearned_by("random_label", epochs=2, lr=0.02)
    assert same_weights(salun, random_label)


def test_soft_thresholding_resets_small_changes_and_shrinks_the_rest():
    param = torch.nn.Parameter(torch.tensor([1.0, 1.1, 0.5, 3.0]))
    anchor = torch.tensor([1.0, 1.0, 1.0, 1.0])
    soft_threshold_toward([param], [anchor], count=2)  # |Δ| = 0, .1, .5, 2 → τ = 0.1
    assert torch.allclose(param.data, torch.tensor([1.0, 1.0, 0.6, 2.9]))


def test_salun_soft_keeps_the_model_closer_to_the_original_than_random_labelling():
    original, soft, _ = unlearned_by("salun_soft", epochs=2, lr=0.02, mask_ratio=0.9)
    _, plain, _ = unlearned_by("random_label", epochs=2, lr=0.02)
    distance = lambda m: sum((a - b).abs().sum() for a, b in zip(m.parameters(), original.parameters()))  # noqa: E731
    assert distance(soft) < 0.8 * distance(plain)


def test_neggrad_plus_raises_the_forget_loss_while_keeping_the_retain_set():
    original, model, task = unlearned_by("neggrad_plus", alpha=0.9, epochs=2)
    _, descent_only, _ = unlearned_by("neggrad_plus", alpha=1.0, epochs=2)
    assert loss_on(model, task.forget) > 2 * loss_on(descent_only, task.forget)
    assert accuracy_on(model, task.retain) > 0.9


def test_l1_sparse_lowers_the_weights_l1_norm():
    original, sparse, task = unlearned_by("l1_sparse", alpha=5e-4, epochs=10, lr=0.1)
    _, plain, _ = unlearned_by("l1_sparse", alpha=0.0, epochs=10, lr=0.1)
    _, finetuned, _ = unlearned_by("finetune", epochs=10, lr=0.1)
    assert same_weights(plain, finetuned)  # α = 0 is fine-tuning
    assert l1_norm(sparse) < 0.95 * l1_norm(plain)


def test_influence_moves_the_weights_by_alpha_times_the_inverse_hessian_vector_product():
    spec, data, original = _problem()
    unlearner = UNLEARNERS.get("influence")(alpha=3.0, samples=10_000)
    task = _task(unlearner, spec, data, 0)
    model = unlearner.unlearn(original, task)
    vector = torch.nn.utils.parameters_to_vector
    step = (vector(model.parameters()) - vector(original.parameters())).double()
    # the same quantities the slow way: per-example loops and a dense Hessian approximation
    frozen = unlearner.copy(original).eval()

    def gradient(x, y):
        return torch.cat([g.flatten() for g in torch.autograd.grad(
            F.cross_entropy(frozen(x), y, reduction="sum"), list(frozen.parameters()))]).double()

    n_f, n_r = len(task.forget), len(task.retain)
    v = gradient(task.forget.x, task.forget.y) / (n_f + n_r) - gradient(task.retain.x, task.retain.y) * n_f / ((n_f + n_r) * n_r)
    rows = torch.stack([gradient(task.retain.x[i : i + 1], task.retain.y[i : i + 1]) for i in range(n_r)])
    hessian = torch.eye(len(v), dtype=torch.float64) + rows.T @ rows / n_r
    expected = 3.0 * torch.linalg.solve(hessian, v)
    assert torch.allclose(step, expected, rtol=1e-3, atol=1e-6 * expected.abs().max().item())
    assert torch.allclose(torch.cat(list(per_sample_gradients(frozen, task.retain, chunk=50))).double()[:5], rows[:5], atol=1e-5)


def test_influence_public_code_recursion_runs_in_one_vector_and_moves_the_weights():
    original, model, _ = unlearned_by("influence", hessian="public_code", samples=200)
    _, exact, _ = unlearned_by("influence", samples=200)
    assert not same_weights(model, original) and not same_weights(model, exact)


def test_boundary_shrink_sends_forget_points_to_their_fgsm_neighbours_label():
    original, model, task = unlearned_by("boundary_shrink", epochs=20, lr=0.05)
    targets = fgsm_neighbour_labels(original, task.forget, 0.1 / task.input_std, 64)
    assert (targets != task.forget.y).any()  # the neighbours cross the boundary somewhere
    model.eval()
    with torch.no_grad():
        predictions = model(task.forget.x).argmax(1)
        before = original(task.forget.x).argmax(1)
    assert (predictions == targets).float().mean() > 0.9
    assert (predictions == targets).float().mean() > (before == targets).float().mean() + 0.1


def test_boundary_expanding_removes_its_shadow_output_and_forgets():
    original, model, task = unlearned_by("boundary_expanding", epochs=10, lr=0.05)
    assert model.head.out_features == original.head.out_features == task.num_classes
    assert model.state_dict().keys() == original.state_dict().keys()
    assert UNLEARNERS.get("boundary_expanding")().verify(original, model, task) == []
    widened = unlearned_by("identity")[1]
    widened.head = torch.nn.Linear(widened.head.in_features, task.num_classes + 1)
    assert UNLEARNERS.get("boundary_expanding")().verify(original, widened, task)
    assert accuracy_on(model, task.forget) < accuracy_on(original, task.forget) - 0.2


def forgetting_class_3(name, **params):
    """The conformance problem's original, asked to forget class 3 (the pool is the same)."""
    spec, _, original = _problem()
    data = prepare_data(spec_from_dict({**CHECK_SPEC, "forget": {"kind": "class", "classes": [3]}}))
    assert torch.equal(data.pool.x, _problem()[1].pool.x)
    unlearner = UNLEARNERS.get(name)(**params)
    cpu = torch.device("cpu")
    task = make_task(unlearner, data, spec.train, None, torch_generator("test", name), cpu)
    return original, unlearner.unlearn(original, task), task


def test_scrubs_max_steps_move_the_student_away_from_the_teacher_on_the_forget_set():
    original, model, task = forgetting_class_3("scrub", epochs=3, max_epochs=2, lr=0.01)
    _, min_steps_only, _ = forgetting_class_3("scrub", epochs=3, max_epochs=0, lr=0.01)

    def divergence(student, subset):
        with torch.no_grad():
            return distillation_kl(original.eval()(subset.x), student.eval()(subset.x), 1.0).item()

    forget_gain = divergence(model, task.forget) / divergence(min_steps_only, task.forget)
    retain_gain = divergence(model, task.retain) / divergence(min_steps_only, task.retain)
    assert forget_gain > 1.5 * retain_gain
    assert accuracy_on(model, task.retain) > 0.9


def test_the_audit_computes_each_originals_saliency_once_and_uses_it(tmp_path):
    from helpers import small_spec

    spec = small_spec(tmp_path, audit={"seeds": 1}, unlearners={
        "salun": {}, "salun_30": {"method": "salun", "mask_ratio": 0.3}})
    data = prepare_data(spec)
    plan = build_plan(spec, data, torch.device("cpu"))
    assert sum(job.kind == SALIENCY for job in plan.jobs) == 1
    run_audit(spec, tmp_path / "out", show_progress=False)
    store = Store(spec.audit.store)
    cpu = torch.device("cpu")
    original = new_model(spec, data, torch.Generator(), cpu)
    original.load_state_dict(store.tensors(plan.originals[0]))
    unlearner = UNLEARNERS.get("salun")(mask_ratio=0.3)
    task = make_task(unlearner, data, spec.train, None, torch_generator("unlearn", "salun", 0), cpu)
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS_PER_JOB)  # as the audit's jobs run, so reductions round alike
    try:
        direct = unlearner.unlearn(original, task)
    finally:
        torch.set_num_threads(threads)
    stored = store.tensors(plan.unlearned["salun_30"][0])
    assert all(torch.equal(direct.state_dict()[k], stored[k]) for k in stored)


@pytest.mark.parametrize("name", ["finetune", "salun", "neggrad_plus", "scrub", "retrain"])
def test_the_recipes_augmentation_reaches_every_training_batch_of_a_method(name):
    spec, data, original = _problem()
    unlearner = UNLEARNERS.get(name)(**({} if name == "retrain" else {"epochs": 1}))
    seen = []

    def augment(x, generator):
        seen.append(len(x))
        return x + 0.01 * torch.randn(x.shape, generator=generator)

    plain = unlearner.unlearn(original, _task(unlearner, spec, data, 0))
    augmented = unlearner.unlearn(original, dataclasses.replace(_task(unlearner, spec, data, 0), augment=augment))
    assert seen and not same_weights(plain, augmented)
    trained_on = {"finetune": len(data.retain), "retrain": spec.train.epochs * len(data.retain)}
    if name in trained_on:
        assert sum(seen) == trained_on[name]
