import pydantic
import pytest
import tomllib

from audit.core.errors import SalunInputError
from audit.config.spec import default_spec, default_spec_text, load_spec, spec_from_dict
from helpers import small_config, write_toml


def error_of(config) -> str:
    with pytest.raises(SalunInputError) as raised:
        spec_from_dict(config)
    return str(raised.value)


def test_defaults_are_filled_in_everywhere():
    spec = spec_from_dict({"unlearners": {"finetune": {"epochs": 3}, "identity": {}}})
    resolved = spec.to_dict()
    assert resolved["train"]["epochs"] == 30 and resolved["train"]["schedule"] == "cosine"
    assert resolved["forget"] == {"kind": "random", "fraction": 0.1}
    assert resolved["model"] == {"arch": "cnn", "width": 16}
    assert resolved["unlearners"]["finetune"] == {
        "method": "finetune", "epochs": 3, "lr": 0.2, "batch_size": None, "momentum": 0.9, "weight_decay": 5e-4,
    }
    assert resolved["unlearners"]["identity"] == {"method": "identity"}


def test_resolved_spec_loads_back_to_the_same_spec():
    spec = default_spec()
    again = spec_from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
    assert again.digest() == spec.digest()


def test_spec_is_frozen():
    spec = default_spec()
    with pytest.raises(pydantic.ValidationError):
        spec.train.epochs = 1


def test_digest_follows_the_experiment_not_the_store_folder():
    base = spec_from_dict(small_config())
    moved = spec_from_dict(small_config(audit={"store": "elsewhere"}))
    changed = spec_from_dict(small_config(train={"lr": 0.01}))
    assert base.digest() == moved.digest()
    assert base.digest() != changed.digest()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"train": {"lr": "fast"}}, "train.lr: Input should be a valid number (got 'fast')"),
        ({"train": {"epochs": 2.5}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"lrr": 0.1}}, "train.lrr: unknown field (did you mean 'lr'?)"),
        ({"forget": {"fraction": 1.0}}, "forget.fraction: Input should be less than 1"),
        ({"forget": {"fraction": 0.1, "count": 5}}, "forget: give forget.fraction or forget.count, not both"),
        ({"forget": {"kind": "class", "fraction": None}}, "forget.classes: class-wise forgetting needs"),
        ({"forget": {"kind": "class", "fraction": 0.2, "classes": [1]}}, "forget.fraction: not used when forget.kind = 'class'"),
        ({"audit": {"seeds": 0}}, "audit.seeds: Input should be greater than or equal to 1"),
        ({"audit": {"device": "tpu"}}, "audit.device: Input should be 'auto', 'cpu' or 'cuda'"),
        ({"train": {"augmentation": "mixup"}}, "train.augmentation: Input should be 'none', 'crop_flip', "),
        ({"data": {"dataset": "digts"}}, "data.dataset: unknown dataset 'digts' (did you mean 'digits'?)"),
        ({"model": {"arch": "mlp", "hidden": "wide"}}, "model.hidden: "),
        ({"model": {"arch": "mlp", "depth": 3}}, "model.depth: unknown field"),
        ({"unlearners": {"finetun": {}}}, "unlearners.finetun: unknown unlearner 'finetun' (did you mean 'finetune'?)"),
        ({"unlearners": {"finetune": {"lr": "x"}}}, "unlearners.finetune.lr: Input should be a valid number"),
        ({"unlearners": {"ft": {"method": "finetune", "epoch": 3}}}, "unlearners.ft.epoch: unknown field (did you mean 'epochs'?)"),
        ({"unlearners": {}}, "unlearners: no method to audit"),
        ({"policy": {"rules": []}}, "policy.rules: expected a non-empty list"),
        ({"relearn": {"run": ["retain"], "aux_dataset": "digts"}}, "relearn.aux_dataset: unknown dataset 'digts'"),
        ({"relearn": {"run": ["everything"]}}, "relearn.run.0: Input should be 'retain' or 'few_shot'"),
        ({"backdoor": {"fraction": 1.5}}, "backdoor.fraction: Input should be less than or equal to 1"),
        ({"policy": {"rules": ["mia.ulira.auc <= 0.55", "mia.ulira.auc ~ 0.5"]}}, "policy.rules[1]: expected `<path> <op>"),
        ({"policy": {"rules": ["accuracy <= 0.5"]}}, "policy.rules[0]: the path 'accuracy' must start with one of"),
        ({"policy": {"rules": ['equivalence.tost.UA <= "equivalent"']}}, "policy.rules[0]: a string threshold takes =="),
        ({"policy": {"rules": ["mia.ulira.auc <= high"]}}, "policy.rules[0]: threshold 'high' is neither"),
    ],
)
def test_bad_fields_are_named_by_their_path(overrides, expected):
    message = error_of(small_config(**overrides))
    assert message.startswith(expected), message


def test_unknown_section_is_named():
    config = small_config()
    config["trian"] = {"epochs": 3}
    assert error_of(config).startswith("trian: unknown field (did you mean 'train'?)")


def test_one_method_can_be_audited_under_two_labels():
    spec = spec_from_dict(small_config(unlearners={
        "ft_slow": {"method": "finetune", "lr": 0.01}, "ft_fast": {"method": "finetune", "lr": 0.5},
    }))
    assert {u.method for u in spec.unlearners.values()} == {"finetune"}
    assert spec.unlearners["ft_fast"].params["lr"] == 0.5


def test_load_spec_reads_toml_and_resolves_paths_from_its_folder(tmp_path):
    path = write_toml(tmp_path / "audit.toml", small_config(forget={"kind": "indices", "fraction": None, "indices_file": "f.txt"}))
    spec = load_spec(path)
    assert spec.resolve_path(spec.forget.indices_file) == tmp_path / "f.txt"


def test_missing_config_file_and_bad_toml_are_input_errors(tmp_path):
    with pytest.raises(SalunInputError, match="config file not found"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(SalunInputError, match="not valid TOML"):
        load_spec(bad)


def test_default_example_is_commented_and_valid():
    text = default_spec_text()
    assert text.count("#") > 10
    spec = default_spec()
    assert spec.data.dataset == "digits"
    assert {"identity", "retrain"} <= set(spec.unlearners)
    assert tomllib.loads(text)["audit"]["seeds"] == spec.audit.seeds
