"""ONNX export of one generator (input and output: (N, K, H, W) model space; N, H and W dynamic, H and W multiples
of the generator's size multiple, stored in the metadata)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .directions import Direction
from .errors import InputError
from .io.atomic import atomic_path


def export_onnx(model: str | Path, output: str | Path, direction: Direction | str = Direction.T1_TO_T2, opset: int = 17) -> Path:
    from .inference import Translator

    try:
        import onnx
    except ImportError:
        raise InputError("ONNX export needs onnx: pip install 'mri-cyclegan[onnx]'") from None
    tr = Translator.from_checkpoint(model, device="cpu", precision="fp32")
    g = tr.model.generator(direction).float().to(memory_format=torch.contiguous_format).eval()
    mult = tr.model.size_multiple
    out = Path(output)
    x = torch.zeros(2, tr.context, 4 * mult, 6 * mult)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():  # the exporter's notes on constant folding and instance norm are expected
            warnings.simplefilter("ignore")
            torch.onnx.export(g, (x,), str(tmp), input_names=["image"], output_names=["translated"], opset_version=opset,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "translated": {0: "batch", 2: "height", 3: "width"}}, dynamo=False)
        m = onnx.load(str(tmp))
        meta = {"direction": direction, "size_multiple": str(mult), "channels": str(tr.context), "config": json.dumps(tr.config.to_dict())}
        for k, v in meta.items():
            entry = m.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(m, str(tmp))
    return out
