"""Where does a trained model lose (or gain) against its own lookup table? For a checkpoint from
``benchmarks/faithfulness.py`` (a volume case's ``run_*/checkpoints/last.safetensors``), translate the test subject
(subject 100) with the model and with the same model's residual switched off (the table), and print:

* squared error per depth from the brain surface (1, 2-3, 4-8, > 8 voxels, in-plane);
* the change training made there (mean |model - table|, and the share of voxels moved by more than 0.1);
* per-slice PSNR with the residual removed near the surface or near the image border (what each region costs).

    python benchmarks/faithfulness_where.py /tmp/faithfulness_xyz/e/run_now/checkpoints/last.safetensors --direction t2_to_t1

Prints only (diagnostic); about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import faithfulness as fb  # noqa: E402


def main() -> None:
    from scipy import ndimage

    from mri_cyclegan.checkpoints import load_model
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.io import Volume
    from mri_cyclegan.metrics import score, to_unit

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--direction", default="t2_to_t1", choices=list(fb.DIRECTIONS))
    args = ap.parse_args()
    a, b = fb.DIRECTIONS[args.direction]
    s, vols, _ = fb.test_data("nifti")
    brain, truth = s.brain, to_unit(vols[b])
    model, cfg = load_model(args.checkpoint)
    translator = Translator(model, cfg, device="cpu", precision="fp32")
    source = Volume(vols[a], s.affine)
    raw = {"model": translator.translate(source, args.direction),
           "table": translator.table_translation(source, args.direction)}  # evaluate's baseline, the untrained model
    unit = {k: to_unit(v) for k, v in raw.items()}

    def psnr(p: np.ndarray) -> float:
        return float(np.mean([r["psnr"] for r in score(to_unit(p), truth, brain, axis=2).slices]))

    depth = np.stack([ndimage.distance_transform_cdt(m, metric="chessboard") if m.any() else np.zeros_like(m, int)
                      for m in np.moveaxis(brain, 2, 0)], 2)
    change = unit["model"] - unit["table"]
    print(f"{args.checkpoint}: {args.direction}, per-slice PSNR model {psnr(raw['model']):.2f} dB, table {psnr(raw['table']):.2f} dB")
    print(f"{'depth':<8} {'voxels':>8} {'MSE model':>10} {'MSE table':>10} {'|change|':>9} {'moved>0.1':>9}")
    for name, m in (("1", depth == 1), ("2-3", (depth >= 2) & (depth <= 3)), ("4-8", (depth >= 4) & (depth <= 8)), ("> 8", depth > 8)):
        m = m & brain
        mse = {k: float(((u - truth)[m] ** 2).mean()) for k, u in unit.items()}
        print(f"{name:<8} {int(m.sum()):>8} {mse['model']:>10.5f} {mse['table']:>10.5f} {np.abs(change[m]).mean():>9.4f} "
              f"{(np.abs(change[m]) > 0.1).mean():>9.4f}")
    x, y = np.meshgrid(np.arange(brain.shape[0]), np.arange(brain.shape[1]), indexing="ij")
    edge = np.minimum.reduce([x, brain.shape[0] - 1 - x, y, brain.shape[1] - 1 - y])[..., None]
    for label, region in (("within 3 voxels of the surface", depth <= 3), ("within 8 voxels of the surface", depth <= 8),
                          ("within 8 voxels of the image border", np.broadcast_to(edge < 8, brain.shape))):
        print(f"residual removed {label}: {psnr(np.where(region, raw['table'], raw['model'])):.2f} dB")


if __name__ == "__main__":
    main()
