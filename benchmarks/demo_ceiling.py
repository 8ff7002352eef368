"""How much can any local translation add over the lookup table on the demo? A ceiling with *paired* supervision.

The demo's T1 and T2 are co-registered, so the training slabs can be used paired, which no CycleGAN run can do:
a per-voxel MLP is fitted to predict the true target contrast from multi-scale local features of the input (the
input and the lookup table's translation, Gaussian-smoothed in-plane at 0.5-8 voxels, in-plane gradients and
Laplacian), on the demo's training slabs, and scored on the held-out slabs with the demo's own protocol (per-slice
PSNR/SSIM in the brain mask, each volume in its own robust window) next to the lookup table (the untrained model).

An unpaired model with the same context sees less information than this regressor, so its gain over the table
should not be expected to exceed the regressor's. It is not a strict bound: a deep network with paired data and a
larger receptive field could do more.

    python benchmarks/demo_ceiling.py [--iterations 6000] [--json demo_ceiling.json]

Runs in about 3 minutes on 2 cores (one thread). Run alone when timing anything else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

SCALES = (0.5, 1, 2, 4, 8)  # in-plane Gaussian sigmas (voxels)


def features(src: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(X, Y, Z) [0, 1] input and its lookup-table translation -> (X, Y, Z, F) in-plane multi-scale features."""
    from scipy import ndimage

    f = [src, table]
    for s in SCALES:
        f += [ndimage.gaussian_filter(src, (s, s, 0)), ndimage.gaussian_filter(table, (s, s, 0))]
    gx = ndimage.gaussian_filter(src, (1, 1, 0), order=(1, 0, 0))
    gy = ndimage.gaussian_filter(src, (1, 1, 0), order=(0, 1, 0))
    lap = ndimage.gaussian_filter(src, (1, 1, 0), order=(2, 0, 0)) + ndimage.gaussian_filter(src, (1, 1, 0), order=(0, 2, 0))
    return np.stack(f + [gx, gy, np.hypot(gx, gy), lap], -1).astype(np.float32)


def fit_predict(feats: np.ndarray, target: np.ndarray, train: np.ndarray, apply: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """An MLP (F -> 128 -> 128 -> 1) fitted by MSE on the voxels ``train``, evaluated on the voxels ``apply``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = torch.from_numpy(feats[train]), torch.from_numpy(target[train].astype(np.float32))[:, None]
    net = torch.nn.Sequential(torch.nn.Linear(feats.shape[-1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for it in range(iterations):
        idx = torch.randint(0, len(x), (4096,), generator=g)
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it == int(iterations * 2 / 3):
            for group in opt.param_groups:
                group["lr"] = 1e-3
    with torch.no_grad():
        return net(torch.from_numpy(feats[apply]))[:, 0].numpy()


def main() -> None:
    import torch
    from scipy import ndimage

    from mri_cyclegan.data.demo import demo_split
    from mri_cyclegan.data.preprocess import Preprocessor
    from mri_cyclegan.demo import demo_config
    from mri_cyclegan.directions import DIRECTIONS
    from mri_cyclegan.inference import baseline_translation
    from mri_cyclegan.metrics import score, to_unit
    from mri_cyclegan.training.trainer import priors_from_data

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="demo_ceiling.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    cfg = demo_config(5)
    split = demo_split(cfg.data)
    luts = dict(zip(DIRECTIONS, priors_from_data(split.t1_train, split.t2_train)))
    pre = Preprocessor(cfg.data)
    near_brain = ndimage.binary_dilation(split.mask, iterations=2)
    train = np.zeros_like(split.mask)
    train[:, :, split.train_index] = True
    train &= near_brain
    mean = lambda s, k: float(np.mean([r[k] for r in s.slices]))  # noqa: E731
    out = {"machine": machine(), "iterations": args.iterations, "scales": list(SCALES), "n_train_voxels": int(train.sum())}
    print(f"demo ceiling: paired per-voxel MLP on in-plane features (sigmas {SCALES}), {int(train.sum())} training voxels, "
          f"{len(split.test_index)} held-out slices")
    print(f"{'direction':<10} {'method':<28} {'psnr':>7} {'ssim':>7}")
    for direction, src, ref in (("t1_to_t2", split.t1, split.t2), ("t2_to_t1", split.t2, split.t1)):
        t0 = time.perf_counter()
        table = to_unit(baseline_translation(src, luts[direction], pre, cfg.model.unmix_outline))
        ref_u = to_unit(ref.data)
        feats = features(to_unit(src.data), table)
        pred = table.copy()
        pred[near_brain] = fit_predict(feats, ref_u, train, near_brain, args.iterations, args.seed)
        rows = {"lookup table": score(table, ref_u, split.test_mask), "paired local regressor": score(np.clip(pred, 0, 1), ref_u, split.test_mask)}
        out[direction] = {k: {"psnr": mean(s, "psnr"), "ssim": mean(s, "ssim")} for k, s in rows.items()}
        out[direction]["seconds"] = round(time.perf_counter() - t0, 1)
        for k, v in out[direction].items():
            if isinstance(v, dict):
                print(f"{direction:<10} {k:<28} {v['psnr']:>7.2f} {v['ssim']:>7.3f}")
        gain = {m: out[direction]["paired local regressor"][m] - out[direction]["lookup table"][m] for m in ("psnr", "ssim")}
        out[direction]["gain"] = gain
        print(f"{direction:<10} {'gain over the table':<28} {gain['psnr']:>+7.2f} {gain['ssim']:>+7.3f}")
    print("wrote", write_json(args.json, out))


if __name__ == "__main__":
    main()
