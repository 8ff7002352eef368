"""torch.profiler table of the top operators in one training iteration (where does the time go?).

    python benchmarks/profile_step.py [--config demo|a|b|c|d] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import random_slices  # noqa: E402
from train_speed import CONFIGS  # noqa: E402

from mri_cyclegan.config import Config  # noqa: E402
from mri_cyclegan.training.trainer import Trainer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="demo")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--rows", type=int, default=12)
    args = ap.parse_args()
    cfg = Config().replace(**CONFIGS[args.config], **{"train.precision": args.precision, "train.device": "cpu"})
    s = cfg.data.train_size
    data = random_slices(s)
    tr = Trainer(cfg, data, data, "/tmp/mri_cyclegan_profile_run")
    batch = tr.batches.next()
    tr.train_step(*batch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        tr.train_step(*batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
