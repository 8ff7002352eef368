"""Seconds per CycleGAN training iteration, convolution FLOPs and achieved GFLOP/s, against the machine's matmul peak.

    python benchmarks/train_speed.py [--iters 10] [--configs a,b,c,d,demo] [--precisions fp32,bf16]

(a) ResNet-9 ngf 64 at 256², (b) same at 128², (c) U-Net-256 ngf 64 at 256², (d) ResNet-9 ngf 32 at 128²,
all batch 1, (e) ResNet-6 ngf 32 at 96² batch 4 (the reference-parity network), 1 channel, plain CycleGAN (no prior, identity loss on); plus the demo default.
Writes benchmarks/results/train_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, matmul_peak_gflops, random_slices, write_json  # noqa: E402

from mri_cyclegan.config import Config  # noqa: E402
from mri_cyclegan.demo import DEMO_OVERRIDES  # noqa: E402
from mri_cyclegan.models.edge_conv import EdgeConv2d  # noqa: E402
from mri_cyclegan.training.trainer import Trainer  # noqa: E402

EDGE_FORWARD = EdgeConv2d.forward
BASE = {"train.batch_size": 1, "model.prior": "none", "train.lambda_identity": 0.5, "train.n_samples": 0}
CONFIGS = {
    "a": {**BASE, "data.image_size": 256, "model.ngf": 64, "model.n_blocks": 9},
    "b": {**BASE, "data.image_size": 128, "model.ngf": 64, "model.n_blocks": 9},
    "c": {**BASE, "data.image_size": 256, "model.ngf": 64, "model.generator": "unet", "model.unet_downs": 8},
    "d": {**BASE, "data.image_size": 128, "model.ngf": 32, "model.n_blocks": 9},
    "e": {**BASE, "data.image_size": 96, "model.ngf": 32, "model.n_blocks": 6, "train.batch_size": 4},  # reference_parity.py's network
    "demo": {**DEMO_OVERRIDES, "train.n_samples": 0},
}


def conv_flops(trainer: Trainer, batch) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        trainer.train_step(*batch)
    counts = fc.get_flop_counts().get("Global", {})
    return int(sum(counts.values()))  # convolutions, and the matmuls of the edge layers (models/edge_conv.py)


def bench(name: str, precision: str, iters: int, warmup: int, device: str, channels_last: str = "auto") -> dict:
    cfg = Config().replace(**CONFIGS[name], **{"train.precision": precision, "train.device": device, "train.channels_last": {"on": True, "off": False}.get(channels_last, channels_last)})
    s = cfg.data.train_size
    data = random_slices(s)
    tr = Trainer(cfg, data, data, "/tmp/mri_cyclegan_bench_run")
    batch = tr.batches.next()
    flops = conv_flops(tr, batch)
    for _ in range(warmup):
        tr.train_step(*batch)
    times = []
    for _ in range(iters):
        if tr.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        tr.train_step(*batch)
        if tr.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    return {"config": name, "precision": tr.precision, "channels_last": tr.memory_format == torch.channels_last, "image_size": s, "batch_size": cfg.train.batch_size,
            "s_per_iter": round(sec, 4), "images_per_s": round(2 * cfg.train.batch_size / sec, 2),
            "conv_gflop_per_iter": round(flops / 1e9, 2), "achieved_gflops": round(flops / sec / 1e9, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--configs", default="a,b,c,d,demo")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--channels-last", default="auto", help="comma list of auto,on,off")
    ap.add_argument("--json", default="train_speed.json", help="file name under benchmarks/results/")
    ap.add_argument("--edge-conv", default="on", help="comma list of on,off: off = oneDNN for the 1-channel 7x7 layers too (before/after)")
    args = ap.parse_args()
    fp32_peak = matmul_peak_gflops(torch.float32)
    bf16_peak = matmul_peak_gflops(torch.bfloat16)
    rows = []
    for name in args.configs.split(","):
        for prec, cl, edge in [(p, c, e) for p in args.precisions.split(",") for c in args.channels_last.split(",")
                               for e in args.edge_conv.split(",")]:
            EdgeConv2d.forward = EDGE_FORWARD if edge == "on" else torch.nn.Conv2d.forward
            r = bench(name, prec, args.iters, args.warmup, args.device, cl)
            r["edge_conv"] = edge == "on"
            r.update(fp32_peak_gflops=round(fp32_peak, 1), bf16_peak_gflops=round(bf16_peak, 1),
                     ratio_to_fp32_peak=round(r["achieved_gflops"] / fp32_peak, 3), ratio_to_bf16_peak=round(r["achieved_gflops"] / bf16_peak, 3))
            rows.append(r)
            print(f"{name:>5} {r['precision']:>5} {'NHWC' if r['channels_last'] else 'NCHW'} edge-{edge:<3} {r['s_per_iter']:>9.3f} s/it {r['conv_gflop_per_iter']:>9.1f} GFLOP/it "
                  f"{r['achieved_gflops']:>7.1f} GFLOP/s  x{r['ratio_to_fp32_peak']:.2f} fp32 peak  x{r['ratio_to_bf16_peak']:.2f} bf16 peak", flush=True)
    info = machine()
    print(f"machine: {info}; matmul peak fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s")
    print("wrote", write_json(args.json, {"machine": info, "records": rows}))


if __name__ == "__main__":
    main()
