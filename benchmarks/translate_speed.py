"""End-to-end translation of a 193x229x193 1 mm NIfTI volume at native resolution (read, translate every axial
slice at 193x229, write), for 2D (K=1) and 2.5D (K=3) models.

    python benchmarks/translate_speed.py [--model RUN_DIR] [--repeats 3] [--backends fp32,onnx] [--context 1,3]

Without --model, demo-configuration models with untrained weights are used (same speed).
Backends: PyTorch fp32, PyTorch bf16, onnxruntime. Writes benchmarks/results/translate_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from mri_cyclegan.data.demo import load_demo_volumes  # noqa: E402
from mri_cyclegan.inference import Translator  # noqa: E402
from mri_cyclegan.translate_files import translate_path  # noqa: E402
from mri_cyclegan.models import CycleGAN  # noqa: E402


def make_volume(path: Path) -> tuple[int, ...]:
    v = load_demo_volumes()
    full = np.zeros((193, 229, 193), np.float32)
    full[24 : 24 + v.t1.shape[0], 25 : 25 + v.t1.shape[1], 6 : 6 + v.t1.shape[2]] = v.t1
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    aff[:3, 3] = [-96, -132, -78]
    nib.save(nib.Nifti1Image(full.astype(np.int16), aff), path)
    return full.shape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backends", default="fp32,onnx")
    ap.add_argument("--context", default="1,3", help="context slices K of the untrained models (ignored with --model)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "t1.nii.gz"
    shape = make_volume(src)
    models = {}
    if args.model:
        models["model"] = args.model
    else:
        from mri_cyclegan.demo import demo_config
        from mri_cyclegan.checkpoints import model_tensors, save_checkpoint

        for k in (int(c) for c in args.context.split(",")):
            cfg = demo_config(10, k).replace(**{"data.spacing": 1.0})
            models[f"K={k}"] = tmp / f"demo_untrained_k{k}.safetensors"
            save_checkpoint(models[f"K={k}"], model_tensors(CycleGAN.from_config(cfg)), {"config": cfg.to_dict()})
    rows = []
    for label, model in models.items():
        for backend in args.backends.split(","):
            tr = Translator.from_checkpoint(model, device="cpu", precision="bf16" if backend == "bf16" else "fp32", batch_size=args.batch_size)
            if backend == "onnx":
                from mri_cyclegan.export import export_onnx

                tr.use_onnx("t1_to_t2", export_onnx(model, tmp / "g.onnx", "t1_to_t2"))
            times = []
            for r in range(args.repeats + 1):
                t = time.perf_counter()
                translate_path(tr, src, tmp / f"out_{backend}.nii.gz", "t1_to_t2", progress=False)
                if r:  # first run is warm-up
                    times.append(time.perf_counter() - t)
            sec = statistics.median(times)
            n_slices = shape[2]
            rows.append({"model": label, "backend": backend, "volume_shape": list(shape), "seconds_per_volume": round(sec, 2),
                         "slices_per_s": round(n_slices / sec, 1), "context_slices": tr.context, "spacing": tr.config.data.spacing})
            print(f"{label:>5} {backend:>5}: {sec:6.2f} s per 193x229x193 volume at native 1 mm, {n_slices / sec:6.1f} slices/s", flush=True)
    info = machine()
    print(f"machine: {info}")
    print("wrote", write_json("translate_speed.json", {"machine": info, "records": rows}))


if __name__ == "__main__":
    main()
