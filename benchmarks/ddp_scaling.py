"""DDP overhead and scaling: iterations/s and images/s for 1 and N processes at the same global batch.

    python benchmarks/ddp_scaling.py [--global-batch 4] [--procs 1 2] [--steps 20] [--device cpu]

Each setting is a `torchrun --standalone --nproc-per-node P` job (gloo on CPU, NCCL on CUDA) running this file
with --worker: the demo's network (ResNet-6 ngf 16, PatchGAN ndf 32, 96² patches, prior, fp32) on the demo
data, batch global/P per process, 1 thread per process on CPU, 3 warm-up steps then --steps timed steps.
Per-image cost ratio = (P x step time at P processes) / (step time at 1 process): 1.0 means no overhead at
all; on a machine with P free cores the wall-clock speed-up is what counts. Writes
benchmarks/results/ddp_scaling.json. Run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))


def worker(args: argparse.Namespace) -> None:
    import tempfile

    import torch

    from mri_cyclegan.data.demo import demo_split
    from mri_cyclegan.demo import demo_config
    from mri_cyclegan.runtime import barrier, distributed_from_env
    from mri_cyclegan.training.trainer import Trainer

    dist = distributed_from_env()
    if args.device == "cpu":
        torch.set_num_threads(1)
    per = args.global_batch // dist.world_size
    cfg = demo_config(0.0, device=args.device).replace(**{"train.minutes": 0.0, "train.batch_size": per, "train.precision": "fp32"})
    split = demo_split(cfg.data)
    trainer = Trainer(cfg, split.t1_train, split.t2_train, Path(tempfile.mkdtemp(prefix="ddp_bench_")), dist=dist)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for _ in range(3):
        trainer.train_step(*trainer.batches.next())
    sync()
    barrier(dist)
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(*trainer.batches.next())
    sync()
    barrier(dist)
    seconds = (time.perf_counter() - t) / args.steps
    if dist.is_main:
        print("RESULT " + json.dumps({"procs": dist.world_size, "batch_per_proc": per, "s_per_it": seconds,
                                      "it_per_s": 1 / seconds, "images_per_s": args.global_batch / seconds}))
    if dist.enabled:
        from mri_cyclegan.runtime import hard_exit

        barrier(dist)
        hard_exit(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--global-batch", type=int, default=4)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    from common import machine, write_json

    rows = []
    for p in args.procs:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(p), str(HERE), "--worker",
               "--global-batch", str(args.global_batch), "--steps", str(args.steps), "--device", args.device]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]))
    base = rows[0]["s_per_it"] * rows[0]["procs"]
    print(f"\nglobal batch {args.global_batch}, demo network, {args.device}, 1 thread per process on CPU")
    print(f"{'procs':>5} {'batch/proc':>10} {'s/it':>7} {'it/s':>6} {'img/s':>6} {'per-image cost vs 1 proc':>25}")
    for r in rows:
        r["cost_ratio"] = r["s_per_it"] * r["procs"] / base
        print(f"{r['procs']:>5} {r['batch_per_proc']:>10} {r['s_per_it']:>7.3f} {r['it_per_s']:>6.2f} {r['images_per_s']:>6.1f} {r['cost_ratio']:>25.2f}")
    print(f"wrote {write_json('ddp_scaling.json', {'machine': machine(), 'device': args.device, 'global_batch': args.global_batch, 'rows': rows})}")


if __name__ == "__main__":
    main()
