"""Checkpoint files and model loading: one safetensors file (tensors only, never pickles) with JSON metadata.

A training checkpoint holds both generators, both discriminators, both optimizers, the image pools, every RNG
state, epoch/step and the resolved config (what training puts in it: :mod:`.training.checkpoint`). Written to a
temp file and renamed, so a run killed at any moment leaves the previous checkpoint intact. Everything that only
*uses* a model (translate, evaluate, validation, export) loads it with :func:`load_model`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .config import Config
from .errors import InputError
from .io.atomic import atomic_path
from .run_folder import RunLayout

if TYPE_CHECKING:
    from .models import CycleGAN

FORMAT = "mri-cyclegan/1"
MODEL = "model"  # tensor-name prefix of the CycleGAN's state dict


def flatten_state(prefix: str, state: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> None:
    for k, v in state.items():
        out[f"{prefix}/{k}"] = v.detach().cpu().contiguous()


def unflatten_state(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "/"
    return {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write ``tensors`` with JSON ``meta`` (config, epoch, step, ...)."""
    from safetensors.torch import save_file

    metadata = {"format": FORMAT, **{k: json.dumps(v) for k, v in meta.items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its checkpoints/last.safetensors)."""
    p = Path(path)
    if p.is_dir():
        p = RunLayout(p).checkpoint("last")
    if not p.is_file():
        raise InputError(f"no checkpoint at {path}; pass a run folder from 'mri-cyclegan train' or a .safetensors checkpoint")
    return p


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any], Config]:
    """Read a checkpoint safely (no code runs). Returns tensors, metadata and the stored config."""
    from safetensors import safe_open

    p = resolve_checkpoint(path)
    try:
        with safe_open(str(p), framework="pt", device=str(device)) as f:
            raw_meta = f.metadata() or {}
            if raw_meta.get("format") != FORMAT:
                raise InputError(f"{p} is not an mri-cyclegan checkpoint (format {raw_meta.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = {k: json.loads(v) for k, v in raw_meta.items() if k != "format"}
    except InputError:
        raise
    except Exception as e:  # truncated / corrupt / foreign files
        raise InputError(f"cannot read checkpoint {p}: {e}; the file is truncated, corrupt or not a checkpoint") from None
    try:
        config = Config.from_saved(meta.get("config"))
    except InputError as e:
        raise InputError(f"checkpoint {p} holds an invalid config ({e}); it was not written by mri-cyclegan or was edited") from None
    return tensors, meta, config


def model_tensors(module: torch.nn.Module, prefix: str = MODEL) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    flatten_state(prefix, module.state_dict(), out)
    return out


def load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: Path | str) -> None:
    state = unflatten_state(prefix, tensors)
    bad = [k for k, v in tensors.items() if k.startswith(prefix + "/") and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError(f"checkpoint {source} holds NaN/inf values ({bad[0]}{' and more' if len(bad) > 1 else ''}); "
                         "it is corrupt or from a run that diverged: use an earlier checkpoint")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise InputError(f"checkpoint {source} does not match the model architecture ({first}); was it trained with other settings?") from None


def load_model(path: str | Path) -> tuple[CycleGAN, Config]:
    """A checkpoint file or run folder -> the CycleGAN it holds (CPU, fp32, train mode as built) and its config.
    Bad files are one-line InputErrors (exit 2), never pickles."""
    from .models import CycleGAN

    tensors, _, config = load_checkpoint(path)
    model = CycleGAN.from_config(config)
    load_module(model, tensors, MODEL, path)
    return model, config
