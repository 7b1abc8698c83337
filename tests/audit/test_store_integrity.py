"""The store serves only what it wrote: every way an artifact's files can be damaged is found,
the artifact is moved aside and recomputed, and an audit's results never silently change."""

import hashlib
import io
import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.results.document import load_results
from audit.config.spec import spec_from_dict
from audit.engine.store import ARRAYS, DIGESTS, META, WEIGHTS, CorruptArtifact, Store, format_digests
from audit.engine.store_maintenance import check_store
from audit.verify import compare
from helpers import small_config

KEY = "ab" * 32
LABEL = "train original seed=0"


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


FORGED = {  # valid files of each kind, with other content than the artifact's
    WEIGHTS: save_safetensors({"w": torch.zeros(6)}),
    ARRAYS: _npz(logits=np.zeros((3, 3))),
    META: json.dumps({"status": "ok", "label": "forged"}).encode(),
}
FORGED[DIGESTS] = format_digests({name: hashlib.sha256(data).hexdigest() for name, data in FORGED.items()}).encode()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


def forge(path: Path) -> None:
    path.write_bytes(FORGED[path.name])


TAMPERS = [flip_byte, truncate, delete, forge]
FILES = [WEIGHTS, ARRAYS, META, DIGESTS]


def written(root: Path, key: str = KEY) -> Store:
    store = Store(root)
    store.put(key, {"status": "ok", "label": LABEL}, tensors={"w": torch.arange(6.0)}, arrays={"logits": np.eye(3)})
    return store


@pytest.mark.parametrize("tamper", TAMPERS)
@pytest.mark.parametrize("name", FILES)
def test_damage_to_any_file_is_found_logged_and_set_aside(tmp_path, name, tamper, caplog):
    tamper(written(tmp_path).path(KEY) / name)
    assert [finding.key for finding in check_store(tmp_path).damaged] == [KEY]
    assert Store(tmp_path).path(KEY).is_dir()  # check only reads

    store = Store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="salun"):
        assert not store.has(KEY)
    assert not store.path(KEY).exists()
    [aside] = list(store.quarantine.iterdir())
    assert aside.name.startswith(f"{KEY}.")
    [warning] = [record.getMessage() for record in caplog.records]
    assert KEY[:12] in warning and (DIGESTS in warning or name in warning)


READERS = {META: Store.meta, WEIGHTS: Store.tensors, ARRAYS: Store.arrays}


@pytest.mark.parametrize("tamper", TAMPERS)
@pytest.mark.parametrize("name", list(READERS))
def test_a_read_never_returns_damaged_bytes(tmp_path, name, tamper):
    tamper(written(tmp_path).path(KEY) / name)
    store = Store(tmp_path)  # as in a worker process: reads with no has() first
    with pytest.raises(CorruptArtifact, match=rf"{KEY[:12]} \(.*\) is corrupt: .*{name}.*run the audit again"):
        READERS[name](store, KEY)
    assert not store.path(KEY).exists() and len(list(store.quarantine.iterdir())) == 1
    assert not store.has(KEY)


def test_damage_after_has_is_found_at_the_read(tmp_path):
    store = written(tmp_path)
    assert Store(tmp_path).has(KEY)
    flip_byte(store.path(KEY) / WEIGHTS)
    assert store.has(KEY)  # verified once per store, so repeated checks stay cheap
    with pytest.raises(CorruptArtifact):
        store.tensors(KEY)
    assert not store.has(KEY)


def test_a_read_with_a_damaged_digests_file_is_refused(tmp_path):
    flip_byte(written(tmp_path).path(KEY) / DIGESTS)
    with pytest.raises(CorruptArtifact, match=DIGESTS):
        Store(tmp_path).meta(KEY)


def test_corrupt_artifact_is_bad_input_that_crosses_process_pools(tmp_path):
    flip_byte(written(tmp_path).path(KEY) / ARRAYS)
    with pytest.raises(CorruptArtifact) as caught:
        Store(tmp_path).arrays(KEY)
    assert isinstance(caught.value, SalunInputError)
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)
    assert "\n" not in str(caught.value) and str(Path(tmp_path) / "quarantine") in str(caught.value)


def test_an_absent_artifact_is_not_corruption(tmp_path, caplog):
    store = Store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="salun"):
        assert not store.has(KEY)
    assert caplog.records == [] and not store.quarantine.exists()


def test_artifacts_without_digests_are_counted_once_and_recomputed(tmp_path, caplog):
    keys = [f"{i:02d}" * 32 for i in range(3)]
    for key in keys:
        delete(written(tmp_path, key).path(key) / DIGESTS)  # as an older salun wrote them
    store = Store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="salun"):
        assert not store.has(keys[0]) and not store.has(keys[1])
    [warning] = [record.getMessage() for record in caplog.records]
    assert "3 artifact(s) without digests" in warning and keys[0][:12] in warning
    assert len(list(store.quarantine.iterdir())) == 2 and store.path(keys[2]).is_dir()
    written(tmp_path, keys[0])
    assert Store(tmp_path).has(keys[0])


def test_a_file_the_digests_do_not_list_is_corruption(tmp_path):
    store = Store(tmp_path)
    store.put(KEY, {"status": "ok"}, tensors={"w": torch.zeros(2)})
    (store.path(KEY) / ARRAYS).write_bytes(FORGED[ARRAYS])
    assert not Store(tmp_path).has(KEY)


# A small real audit, damaged one file at a time: each rerun recomputes and reproduces it.

CONFIG = small_config(audit={"seeds": 2, "reports": []}, unlearners={"finetune": {"epochs": 2}})


def audit_with_store(store: Path, out: Path) -> dict:
    config = {**CONFIG, "audit": {**CONFIG["audit"], "store": str(store)}}
    return run_audit(spec_from_dict(config, base_dir=out.parent), out, show_progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("reference")
    return audit_with_store(folder / "store", folder / "out"), folder


def copied_store(reference, tmp_path) -> Path:
    shutil.copytree(reference[1] / "store", tmp_path / "store")
    return tmp_path / "store"


def artifact(store: Path, kind: str) -> Path:
    """The first artifact (in key order) of a job kind."""
    return next(folder for folder in sorted((store / "objects").glob("*/*"))
                if json.loads((folder / META).read_text())["kind"] == kind)


def flip_16_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 16):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind, name, tamper", [
    ("train", WEIGHTS, flip_16_bytes),
    ("observe", ARRAYS, delete),
    ("observe", ARRAYS, forge),
    ("unlearn", META, truncate),
    ("train", DIGESTS, flip_byte),
])
def test_a_damaged_store_is_recomputed_to_the_same_results(reference, tmp_path, kind, name, tamper):
    store = copied_store(reference, tmp_path)
    folder = artifact(store, kind)
    untampered = {n: (folder / n).read_bytes() for n in (WEIGHTS, ARRAYS) if (folder / n).exists()}
    tamper(folder / name)
    rerun = audit_with_store(store, tmp_path / "out")
    assert compare(reference[0], rerun) == []
    assert [path.name.split(".")[0] for path in (store / "quarantine").iterdir()] == [folder.name]
    assert {n: (folder / n).read_bytes() for n in untampered} == untampered  # recomputed bit for bit
    assert check_store(store).intact == len(list((store / "objects").glob("*/*")))


def test_salun_verify_fails_on_a_tampered_store(reference, tmp_path, cli):
    store = copied_store(reference, tmp_path)
    results = reference[1] / "out" / "results.json"
    assert load_results(results)["spec"]["audit"]["store"] != str(store)
    folder = artifact(store, "train")
    flip_16_bytes(folder / WEIGHTS)
    code, printed, _ = cli("-q", "verify", str(results), "--store", str(store))
    assert code == 1
    assert "bit for bit" not in printed
    label = json.loads((folder / META).read_text())["label"]
    assert "corrupt: 1 artifact(s)" in printed and f"{folder.name[:12]} ({label}): {WEIGHTS} does not match" in printed


def test_salun_store_check_reports_damage_and_repairs_on_request(reference, tmp_path, cli):
    store = copied_store(reference, tmp_path)
    assert cli("store", "check", str(store))[0] == 0
    folder = artifact(store, "observe")
    truncate(folder / ARRAYS)
    code, printed, _ = cli("store", "check", "--store", str(store))
    assert code == 1 and f"corrupt: {folder.name[:12]} (observe " in printed and "1 corrupt" in printed
    assert folder.is_dir()
    code, printed, _ = cli("store", "check", str(store), "--repair")
    assert code == 1 and not folder.exists() and "moved 1 damaged artifact(s)" in printed
    code, printed, _ = cli("store", "check", str(store))
    assert code == 1 and "0 corrupt" in printed and "1 quarantined" in printed
