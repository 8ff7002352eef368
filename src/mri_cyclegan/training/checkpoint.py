"""What training stores in a checkpoint beyond the model: optimizer states as tensors (the file format, loading and
saving are :mod:`mri_cyclegan.checkpoints`)."""

from __future__ import annotations

from typing import Any

import torch

from ..checkpoints import unflatten_state  # one tensor-naming rule


def optimizer_to_tensors(prefix: str, opt: torch.optim.Optimizer, out: dict[str, torch.Tensor]) -> list[dict]:
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            out[f"{prefix}/{pid}/{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return sd["param_groups"]


def optimizer_from_tensors(prefix: str, tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in unflatten_state(prefix, tensors).items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": groups}
