"""Checkpoints from outside salun: safetensors files, or PyTorch state dicts loaded with
weights_only=True. A pickled module, or anything else that would run code when loaded, is
refused; a checkpoint that does not fit the architecture names every parameter that differs.

Every problem is a SalunInputError naming the config field and the file: a path that is a
folder, a FIFO or another non-regular file; a file that is neither a zip archive written by
torch.save nor a pickle (empty, random bytes, text); a zip archive that torch cannot read; a
safetensors file whose header the library rejects (too large, truncated, not JSON). A state
dict fits when it has exactly the architecture's names, with the same shapes and dtypes
(an int64 or float16 tensor where the architecture holds float32 is refused, not cast: the
audit must measure the model as it was saved). Weights that are not finite (nan or inf) are
refused as well, naming each such parameter: such a model's outputs are undefined, so no
metric or attack on it would mean anything, and the file, not the audit, has to change.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from audit.core.errors import SalunInputError
from audit.core.files import regular_file_problem, sha256_of

SAFETENSORS_SUFFIX = ".safetensors"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format
PICKLE_PROTOCOL_2_OR_LATER = b"\x80"  # torch.save's legacy format, and pickle.dump
LISTED_PROBLEMS = 10


def checkpoint_sha256(path: Path, field: str) -> str:
    """The SHA-256 of a checkpoint file that must exist; `field` names the config entry."""
    _require_file(path, field)
    try:
        return sha256_of(path)
    except OSError as error:
        raise SalunInputError(f"{field}: cannot read {path} ({error.strerror or error})") from None


def _require_file(path: Path, field: str) -> None:
    problem = regular_file_problem(path)
    if problem == "not found":
        raise SalunInputError(f"{field}: checkpoint not found: {path}")
    if problem is not None:
        raise SalunInputError(f"{field}: {path} {problem}")


def _first_line(error: object) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def _read_safetensors(path: Path, field: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise SalunInputError(f"{field}: {path} is not a readable safetensors file ({_first_line(error)})") from None


def _unpickler_reason(error: pickle.UnpicklingError) -> str:
    """What torch's weights_only unpickler objected to, without its advice on turning it off."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    return _first_line(text.split(" was not an allowed global")[0])


def _refused(path: Path, field: str, error: pickle.UnpicklingError) -> SalunInputError:
    reason = _unpickler_reason(error)
    why = ("it holds pickled objects beyond tensors, which could run code when loaded" if "Unsupported global" in reason
           else "it is a pickle that the safe loader (torch.load with weights_only=True) cannot read")
    return SalunInputError(f"{field}: refused to load {path}: {why} ({reason}); save model.state_dict() with "
                           "torch.save, or as safetensors")


def _read_torch(path: Path, field: str) -> object:
    with open(path, "rb") as handle:
        start = handle.read(len(ZIP_MAGIC))
    if not start.startswith(PICKLE_PROTOCOL_2_OR_LATER) and start != ZIP_MAGIC:
        what = "an empty file" if not start else "neither a zip archive written by torch.save nor a pickle"
        raise SalunInputError(f"{field}: {path} is not a PyTorch checkpoint ({what}); save model.state_dict() with "
                              "torch.save, or as safetensors")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise _refused(path, field, error) from None
    except Exception as error:  # noqa: BLE001 - weights_only runs no code, so any failure is a malformed file
        archive = " (a zip archive, but not one torch.save wrote)" if start == ZIP_MAGIC else ""
        raise SalunInputError(f"{field}: {path} is not a readable PyTorch checkpoint{archive}: "
                              f"{type(error).__name__}: {_first_line(error)}") from None


def _require_state_dict(state: object, path: Path, field: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict):
        raise SalunInputError(f"{field}: {path} holds a {type(state).__name__}, not a state dict of tensors; "
                              "save model.state_dict()")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise SalunInputError(f"{field}: {path} is not a state dict of tensors: its entry {str(name)[:80]!r} is a "
                                  f"{type(value).__name__}; save model.state_dict()")
    return state


def read_state_dict(path: Path, field: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file; `field` names the config entry in every error."""
    _require_file(path, field)
    try:
        if path.suffix == SAFETENSORS_SUFFIX:
            return _read_safetensors(path, field)
        return _require_state_dict(_read_torch(path, field), path, field)
    except OSError as error:
        raise SalunInputError(f"{field}: cannot read {path} ({error.strerror or error})") from None


def fit_problems(state: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Every parameter or buffer that is missing, unexpected, or of another shape or dtype."""
    expected = model.state_dict()
    shared = [(name, state[name], tensor) for name, tensor in expected.items() if name in state]
    problems = [f"{name}: missing from the checkpoint" for name in expected if name not in state]
    problems += [f"{name}: in the checkpoint but not in the architecture" for name in state if name not in expected]
    problems += [f"{name}: shape {tuple(saved.shape)} in the checkpoint, {tuple(wanted.shape)} in the architecture"
                 for name, saved, wanted in shared if saved.shape != wanted.shape]
    problems += [f"{name}: dtype {_dtype(saved)} in the checkpoint, {_dtype(wanted)} in the architecture"
                 for name, saved, wanted in shared if saved.dtype != wanted.dtype]
    return problems


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def non_finite_problems(state: dict[str, torch.Tensor]) -> list[str]:
    """Every floating-point tensor with values that are nan or inf, and how many."""
    problems = []
    for name, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                problems.append(f"{name}: {bad} of {tensor.numel()} values are not finite (nan or inf)")
    return problems


def _listed(problems: list[str]) -> str:
    more = len(problems) - LISTED_PROBLEMS
    return "; ".join(problems[:LISTED_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")


def load_checkpoint(path: Path, model: nn.Module, field: str, arch: str) -> nn.Module:
    """`model` with the checkpoint's weights, after checking that every one fits and is finite."""
    state = read_state_dict(path, field)
    problems = fit_problems(state, model)
    if problems:
        raise SalunInputError(f"{field}: {path} does not fit model.arch '{arch}': {_listed(problems)}")
    problems = non_finite_problems(state)
    if problems:
        raise SalunInputError(f"{field}: {path} holds non-finite weights, so no audit of it means anything: "
                              f"{_listed(problems)}")
    model.load_state_dict(state)
    return model
