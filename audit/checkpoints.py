"""Checkpoints from outside salun: safetensors files, or PyTorch state dicts loaded with
weights_only=True. A pickled module, or anything else that would run code when loaded, is
refused; a checkpoint that does not fit the architecture names every parameter that differs."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn

from audit.errors import SalunInputError

SAFETENSORS_SUFFIX = ".safetensors"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(path: Path, field: str) -> str:
    """The SHA-256 of a checkpoint file that must exist; `field` names the config entry."""
    _require_file(path, field)
    return sha256_of(path)


def _require_file(path: Path, field: str) -> None:
    if not path.is_file():
        raise SalunInputError(f"{field}: checkpoint not found: {path}")


def read_state_dict(path: Path, field: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file; `field` names the config entry in every error."""
    _require_file(path, field)
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise SalunInputError(f"{field}: {path} is not a readable safetensors file ({error})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise SalunInputError(
            f"{field}: refused to load {path}: it holds pickled objects beyond tensors, which could run code "
            f"when loaded ({str(error).splitlines()[0]}); save model.state_dict() with torch.save, or as "
            "safetensors") from None
    except (RuntimeError, OSError, EOFError) as error:
        raise SalunInputError(f"{field}: {path} is not a PyTorch checkpoint ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise SalunInputError(f"{field}: {path} holds a {type(state).__name__}, not a state dict of tensors; "
                              "save model.state_dict()")
    return state


def fit_problems(state: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Every parameter or buffer that is missing, unexpected or of another shape."""
    expected = model.state_dict()
    problems = [f"{name}: missing from the checkpoint" for name in expected if name not in state]
    problems += [f"{name}: in the checkpoint but not in the architecture" for name in state if name not in expected]
    problems += [f"{name}: shape {tuple(state[name].shape)} in the checkpoint, {tuple(tensor.shape)} in the architecture"
                 for name, tensor in expected.items() if name in state and state[name].shape != tensor.shape]
    return problems


def load_checkpoint(path: Path, model: nn.Module, field: str, arch: str) -> nn.Module:
    """`model` with the checkpoint's weights, after checking that every one fits."""
    state = read_state_dict(path, field)
    problems = fit_problems(state, model)
    if problems:
        listed = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SalunInputError(f"{field}: {path} does not fit model.arch '{arch}': {listed}")
    model.load_state_dict(state)
    return model
