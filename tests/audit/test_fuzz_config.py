"""`salun validate` on hostile configs: each is valid, or refused with exit code 2 and one stderr
line naming the field or the file; never a traceback, never a hang."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from audit.core.errors import SalunInputError
from audit.core.params import keyword_parameters
from audit.core.registry import MODELS, UNLEARNERS
from audit.config.spec import Spec, canonical_json, spec_from_dict
from audit.config.sections import Section
from config_fuzz import (DEFAULT, padded_rule_config, HOSTILE_VALUES, REJECTED, SECTIONS, VALID, Deep, config_texts, mutated_defaults,
                         outcome, random_documents, replaced, to_toml, validated)

SALUN = Path(sys.executable).parent / "salun"
FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "audit.toml"


def assert_valid_or_refused(text: str, config: Path) -> str:
    kind, stderr = outcome(text, config)
    assert kind in (VALID, REJECTED), f"{kind} on\n{text[:2000]}\n---\n{stderr[-3000:]}"
    return stderr


def every_field() -> list[tuple[tuple[str, ...], dict]]:
    """Every field a config can set, each with a config it belongs in: each section's fields, each
    model's options (under its arch) and each method's hyperparameters (under its own section)."""
    fields = []

    def walk(model: type[Section], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            fields.append(((*prefix, name), DEFAULT))
            if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
                walk(field.annotation, (*prefix, name))

    walk(Spec, ())
    for arch, factory in MODELS:
        fields += [(("model", option), {**DEFAULT, "model": {"arch": arch}}) for option in keyword_parameters(factory, 2)]
    for name, method in UNLEARNERS:
        fields += [(("unlearners", name, param), {**DEFAULT, "unlearners": {name: {}}})
                   for param in keyword_parameters(method)]
    return fields


def test_every_field_given_every_hostile_value_is_valid_or_refused_on_one_line():
    """Field by field through the whole spec: wrong types, out-of-range numbers, hostile strings.
    Straight into the spec, as the TOML reading has its own tests below."""
    for path, base in every_field():
        for value in HOSTILE_VALUES:
            if isinstance(value, Deep):
                continue
            try:
                spec = spec_from_dict(replaced(base, path, value))
                canonical_json(spec.to_dict()) and spec.digest()
            except SalunInputError as error:
                message = str(error)
                assert "\n" not in message and len(message) < 2000, (path, value, message)
                assert message.split(": ", 1)[0].split(".")[0].split("[")[0] in SECTIONS, (path, value, message)


@pytest.mark.parametrize("section", [name for name in Spec.model_fields])
@pytest.mark.parametrize("value", [5, "text", [1, 2], [], math.inf, True])
def test_every_section_given_as_a_scalar_or_list_is_refused_naming_it(section, value, config):
    stderr = assert_valid_or_refused(to_toml(replaced(DEFAULT, (section,), value)), config)
    assert f"salun: error: {section}" in stderr


@given(text=config_texts)
@settings(FUZZ, max_examples=300)
def test_generated_configs_are_valid_or_refused_on_one_line(text, config):
    assert_valid_or_refused(text, config)


@pytest.mark.slow
@given(document=mutated_defaults() | random_documents)
@settings(FUZZ, max_examples=3000)
def test_many_more_generated_configs_are_valid_or_refused_on_one_line(document, config):
    assert_valid_or_refused(to_toml(document), config)


HOSTILE = {
    "forget.kind as a list": ("[forget]\nkind = [1]\n", "forget.kind"),
    "method as a number": ("[unlearners.x]\nmethod = 5\n", "unlearners.x.method"),
    "model as a list": ("model = [1, 2]\n[unlearners.identity]\n", "model"),
    "backdoor fraction as a string": ('[backdoor]\nfraction = "0.1"\n[unlearners.identity]\n', "backdoor.fraction"),
    "relearn.run as a number": ("[relearn]\nrun = 5\n[unlearners.identity]\n", "relearn.run"),
    "lr inf": ("[train]\nlr = inf\n[unlearners.identity]\n", "train.lr"),
    "lr nan": ("[train]\nlr = nan\n[unlearners.identity]\n", "train.lr"),
    "method lr nan": ("[unlearners.salun]\nlr = nan\n", "unlearners.salun.lr"),
    "method lr inf": ("[unlearners.finetune]\nlr = inf\n", "unlearners.finetune.lr"),
    "negative epochs": ("[unlearners.finetune]\nepochs = -1\n", "unlearners.finetune.epochs"),
    "negative lr": ("[unlearners.salun]\nlr = -0.1\n", "unlearners.salun.lr"),
    "batch size 0": ("[unlearners.finetune]\nbatch_size = 0\n", "unlearners.finetune.batch_size"),
    "momentum 1.5": ("[unlearners.finetune]\nmomentum = 1.5\n", "unlearners.finetune.momentum"),
    "temperature 0": ("[unlearners.scrub]\ntemperature = 0\n", "unlearners.scrub.temperature"),
    "train epochs huge": ("[train]\nepochs = 99999999999999999999\n[unlearners.identity]\n", "train.epochs"),
    "train momentum 1": ("[train]\nmomentum = 1.0\n[unlearners.identity]\n", "train.momentum"),
    "bootstrap huge": ("[attacks]\nbootstrap = 10000000000\n[unlearners.identity]\n", "attacks.bootstrap"),
    "permutations huge": ("[equivalence]\npermutations = 10000000000\n[unlearners.identity]\n",
                          "equivalence.permutations"),
    "data seed negative": ("[data]\nseed = -1\n[unlearners.identity]\n", "data.seed"),
    "mlp without layers": ('[model]\narch = "mlp"\nhidden = []\n[unlearners.identity]\n', "model.hidden"),
    "store with NUL": ('[audit]\nstore = "a\\u0000b"\n[unlearners.identity]\n', "audit.store"),
    "store empty": ('[audit]\nstore = ""\n[unlearners.identity]\n', "audit.store"),
    "label with a newline": ('[unlearners."a\\nb"]\nmethod = "identity"\n', "unlearners"),
    "dataset name 1 MB": (f'[data]\ndataset = "{"d" * 1_000_000}"\n[unlearners.identity]\n', "data.dataset"),
    "unknown method with a newline": ('[unlearners.x]\nmethod = "a\\nb"\n', "unlearners.x.method"),
    "deep array": ("[train]\nlr = " + "[" * 1000 + "]" * 1000 + "\n", "audit.toml"),
    "deep inline table": ("[train]\nlr = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n", "audit.toml"),
    "deep model option": ('[model]\narch = "cnn"\nwidth = ' + "[" * 100 + "]" * 100 + "\n[unlearners.identity]\n",
                          "model.width"),
    "trigger larger than the images": ('[data]\ndataset = "imagefolder"\nroot = "x"\nimage_size = [8, 8]\n'
                                       "[backdoor]\nfraction = 0.5\nsize = 100\n[unlearners.identity]\n", "backdoor.size"),
    "too many rules": ("[policy]\nrules = [" + ", ".join(['"mia.ulira.auc <= 0.5"'] * 1000) + "]\n"
                       "[unlearners.identity]\n", "policy.rules"),
    "rule of 1 MB": (f'[policy]\nrules = ["mia.ulira.auc <= 0.5{" " * 1_000_000}x"]\n[unlearners.identity]\n',
                     "policy.rules[0]"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_configs_are_refused_with_one_line_naming_the_field(name, config):
    text, field = HOSTILE[name]
    kind, stderr = outcome(text, config)
    assert kind == REJECTED, stderr
    assert stderr.startswith(f"salun: error: {config if field == 'audit.toml' else field}"), stderr


def test_a_config_that_is_not_utf8_is_refused_naming_the_file(config):
    config.write_bytes(b"\xff\xfe[audit]\n")
    kind, stderr = validated(config)
    assert kind == REJECTED and stderr == f"salun: error: {config}: not a UTF-8 text file\n", stderr


def test_repeated_report_formats_are_folded(config):
    from audit.config.spec import spec_from_dict

    spec = spec_from_dict(replaced(DEFAULT, ("audit", "reports"), ["html", "junit", "html"]))
    assert spec.audit.reports == ("html", "junit")


@pytest.mark.timeout(60)  # a hang guard only: benchmarks/fuzz_configs.py --padded-rule measures the time
def test_a_padded_rule_of_1_mb_validates(config):
    kind, stderr = outcome(padded_rule_config(1_000_000), config)
    assert kind == VALID, stderr


def run_salun(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(SALUN), *args], capture_output=True, text=True, timeout=timeout)


def test_the_console_script_exits_2_with_one_line(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text(HOSTILE["deep array"][0], encoding="utf-8")
    run = run_salun("validate", str(path))
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [f"salun: error: {path}: arrays or tables nested too deeply to read"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lr inf", "model as a list", "method as a number", "store with NUL"])
def test_the_console_script_exits_2_with_one_line_naming_the_field(name, tmp_path):
    path = tmp_path / "audit.toml"
    text, field = HOSTILE[name]
    path.write_text(text, encoding="utf-8")
    run = run_salun("validate", str(path))
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith(f"salun: error: {field}: "), run.stderr


def test_the_console_script_names_a_config_path_too_long_for_the_file_system(tmp_path):
    path = tmp_path / ("x" * 300 + ".toml")
    run = run_salun("validate", str(path))
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [f"salun: error: config file {path}: cannot read it: File name too long"]


@pytest.mark.slow
def test_the_console_script_accepts_the_default_config_and_every_example(tmp_path):
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))
    default = tmp_path / "default.toml"
    assert run_salun("init", str(default)).returncode == 0
    for path in [default, *examples]:
        run = run_salun("validate", str(path))
        assert run.returncode == 0 and run.stderr.splitlines()[-1].startswith(f"{path}: valid"), run.stderr


def test_the_deep_nesting_marker_writes_the_depth_asked_for():
    assert to_toml({"a": Deep(3)}) == '"a" = [[[1]]]\n'


@pytest.mark.slow
def test_a_small_run_of_the_fuzzing_benchmark_finds_neither_tracebacks_nor_hangs(tmp_path):
    benchmark = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_configs.py"
    run = subprocess.run([sys.executable, str(benchmark), "--count", "40", "--timeout", "120"],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    counts = dict(line.split() for line in run.stdout.splitlines() if line.startswith("  "))
    assert int(counts["valid"]) + int(counts["rejected"]) == 40, run.stdout


@pytest.mark.parametrize(("content", "expected"), [
    ('{"forget": [1, 2]}', "holds an object; expected a JSON array of integer indices"),
    ('"12"', "holds a string"),
    ("[1, true]", "must hold integer indices only"),
    ("[" * 100_000 + "]" * 100_000, "maximum recursion depth exceeded"),
])
def test_an_indices_file_that_is_no_array_of_integers_is_refused_naming_it(content, expected, tmp_path):
    from audit.data.datasets import prepare_data
    from helpers import small_spec

    (tmp_path / "forget.json").write_text(content)
    spec = small_spec(tmp_path, forget={"kind": "indices", "fraction": None, "indices_file": "forget.json"})
    with pytest.raises(SalunInputError, match=f"forget.indices_file: .*{tmp_path / 'forget.json'}.*{expected}"):
        prepare_data(spec)


def test_a_trigger_larger_than_the_images_is_refused_before_training(tmp_path):
    from audit.data.datasets import prepare_data
    from helpers import small_spec

    spec = small_spec(tmp_path, backdoor={"fraction": 0.5, "size": 100})  # digits: 8 x 8, unknown to the spec
    with pytest.raises(SalunInputError, match="backdoor.size: a 100-pixel trigger does not fit 8 x 8 images; at most 8"):
        prepare_data(spec)
    assert prepare_data(small_spec(tmp_path, backdoor={"fraction": 0.5, "size": 8})).input_shape == (1, 8, 8)
