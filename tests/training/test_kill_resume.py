"""A training process killed with SIGKILL (mid-step, mid-checkpoint-write) always resumes cleanly."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mri_cyclegan.checkpoints import load_checkpoint

from tests.conftest import make_image_folders

# Runs `mri-cyclegan train ...` and SIGKILLs itself at the N-th train step or right after writing (half of) the N-th
# 'last' checkpoint's temp file, before it is renamed into place.
DRIVER = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
from mri_cyclegan import cli
from mri_cyclegan.training.trainer import Trainer
mode, n = sys.argv[1], int(sys.argv[2])
calls = [0]
if mode == "step":
    original_step = Trainer.train_step
    def train_step(self, *batch):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original_step(self, *batch)
    Trainer.train_step = train_step
elif mode == "checkpoint":  # counts writes of checkpoints/last (best is written beside it)
    import safetensors.torch as st
    original_save, original_trainer_save, name = st.save_file, Trainer.save, ["last"]
    def trainer_save(self, which="last"):
        name[0] = which
        return original_trainer_save(self, which)
    Trainer.save = trainer_save
    def save_file(tensors, path, metadata=None):
        calls[0] += name[0] == "last"
        original_save(tensors, path, metadata=metadata)
        if calls[0] == n and name[0] == "last":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    st.save_file = save_file
sys.exit(cli.main(sys.argv[3:]))
"""

FLAGS = ["--patch-size", "32", "--ngf", "4", "--n-blocks", "1", "--ndf", "8", "--batch-size", "2", "--epochs", "4",
         "--iters-per-epoch", "2", "--pool-size", "2", "--device", "cpu", "--precision", "fp32", "--quiet"]  # fmt: skip


def _run(mode: str, n: int, args: list[str]) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-c", DRIVER, mode, str(n), *args], env=env, capture_output=True, timeout=120).returncode


def _steps(run: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run / "losses.csv").read_text().splitlines()[1:]]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_mid_checkpoint_and_mid_step_then_resume(tmp_path):
    t1, t2 = make_image_folders(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), *FLAGS]

    # 1. killed while writing the 3rd checkpoint (after epoch 2): a half-written temp file is left behind
    assert _run("checkpoint", 3, args) == -signal.SIGKILL
    assert list(run.rglob(".tmp-*"))
    _, meta, _ = load_checkpoint(run)  # the previous checkpoint is intact
    assert meta["step"] == 2
    assert _steps(run) == [1, 2, 3, 4]

    # 2. resumed, then killed in the middle of its 2nd step
    assert _run("step", 2, [*args, "--resume"]) == -signal.SIGKILL
    assert not list(run.rglob(".tmp-*"))  # the resume removed what the killed write left
    _, meta, _ = load_checkpoint(run)
    assert meta["step"] == 2

    # 3. resumed to the end
    assert _run("none", 0, [*args, "--resume"]) == 0
    _, meta, _ = load_checkpoint(run)
    assert meta["step"] == 8 and meta["epoch"] == 4
    assert _steps(run) == list(range(1, 9))  # no gap, no duplicate
    assert not list(run.rglob(".tmp-*"))
