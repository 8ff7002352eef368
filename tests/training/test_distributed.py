"""DDP on CPU (gloo on loopback): ranks stay identical, 2 ranks x batch B == 1 process x batch 2B, torchrun runs
the CLI as one job (also as two simulated nodes), rank 0 alone writes, resume works with another process count."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mri_cyclegan.config import Config

from tests.conftest import TINY, make_image_folders

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(batch: int) -> Config:
    return Config().replace(**{**TINY, "train.batch_size": batch, "train.pool_size": 0})


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _worker(rank: int, world: int, port: int, folders, out: Path, batch: int) -> None:
    import torch.distributed as td

    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.runtime import Distributed, hard_exit
    from mri_cyclegan.training.trainer import Trainer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = _config(batch)
    trainer = Trainer(cfg, load_domain(folders[0], cfg.data), load_domain(folders[1], cfg.data), out, dist=Distributed(rank, world, rank))
    rows, same = [], []
    for _ in range(STEPS):
        rows.append(trainer.train_step(*trainer.batches.next()))
        flat = _params(trainer.model)
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        td.all_gather(gathered, flat)
        same.append(all(torch.equal(gathered[0], g) for g in gathered))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"rows": rows, "same": same, "params": _params(trainer.model)}, out / "result.pt")
    td.barrier()  # every rank is done with the group ...
    hard_exit(0)  # ... and leaves without tearing gloo down (see runtime.hard_exit)


def test_two_ranks_equal_one_process_with_twice_the_batch(tmp_path):
    """Tolerance: the first two steps' losses agree to 1e-5 (relative); later steps within 1 %, weights within
    2 x lr per step, and fewer than 1 % of them further apart than 1e-4: Adam's first steps move each weight by ~lr * sign(grad), and gradients summed in another
    order flip the sign of a few near-zero entries, which then spreads a little."""
    import torch.multiprocessing as mp

    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.training.trainer import Trainer

    folders = make_image_folders(tmp_path / "data")
    mp.spawn(_worker, args=(2, _free_port(), folders, tmp_path / "ddp", 1), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp" / "result.pt")
    assert ddp["same"] == [True] * STEPS  # parameters identical on both ranks after every step

    cfg = _config(2)
    single = Trainer(cfg, load_domain(folders[0], cfg.data), load_domain(folders[1], cfg.data), tmp_path / "one")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: another thread count sums in another order
    try:
        rows = [single.train_step(*single.batches.next()) for _ in range(STEPS)]
    finally:
        torch.set_num_threads(threads)
    for step, (a, b) in enumerate(zip(rows, ddp["rows"])):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-5 if step < 2 else 1e-2, abs=1e-6), (step, k)
    # A weight whose gradient sign flipped moves the other way: at most 2 * lr per Adam step (seen: 1.16e-3 after 3
    # steps on a Zen 4 CPU); a wiring bug (gradients not averaged, a rank's batch lost) moves most weights instead.
    diff = (ddp["params"] - _params(single.model)).abs()
    assert float(diff.max()) <= 2 * STEPS * cfg.train.lr * 1.05
    assert float((diff > 1e-4).float().mean()) < 1e-2, float((diff > 1e-4).float().mean())  # seen: 0.15 %


def test_sampler_shards_are_the_global_batch():
    from mri_cyclegan.data.dataset import SliceSet, Stack, UnpairedBatches

    data = SliceSet([Stack(f"s{i}", torch.full((1, 40, 40), i / 10 - 0.5).half(), [0]) for i in range(8)])
    cfg = _config(2).data
    whole = UnpairedBatches(data, data, cfg, 4, seed=7).next()
    parts = [UnpairedBatches(data, data, cfg, 2, seed=7, rank=r, world_size=2).next() for r in range(2)]
    for i in range(2):  # T1 and T2 each
        torch.testing.assert_close(torch.cat([p[i] for p in parts]), whole[i])


def _torchrun(args: list[str], extra: list[str] | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", *(extra or []), "-m", "mri_cyclegan", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


FLAGS = ["--patch-size", "32", "--ngf", "4", "--n-blocks", "1", "--ndf", "8", "--batch-size", "1", "--iters-per-epoch", "2",
         "--device", "cpu", "--precision", "fp32", "--quiet"]  # fmt: skip


def _run_job(make_args, root: Path, agents: int = 1, extra=None) -> tuple[Path, list[str]]:
    """Run a torchrun job (``agents`` launchers at once) into a fresh run folder and return it with the outputs.
    A worker killed by SIGABRT while tearing down gloo was seen twice in ~15 full-suite runs on this 2-core VM
    (never in isolation, never since the workers meet at a barrier before leaving); the job is then run once
    more in a new folder, so that this rare flake cannot hide a real failure, which fails twice."""
    for attempt in range(2):
        run = root / f"run{attempt}"
        launch = extra() if callable(extra) else extra  # e.g. a fresh rendezvous port for each attempt
        procs = [_torchrun(make_args(run), launch) for _ in range(agents)]
        outs = [p.communicate(timeout=180)[0] for p in procs]
        if all(p.returncode == 0 for p in procs):
            return run, outs
        if attempt == 0 and any("SIGABRT" in o for o in outs):
            continue
        raise AssertionError("\n".join(outs))
    raise AssertionError("unreachable")


def _steps(run: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run / "losses.csv").read_text().splitlines()[1:]]


def test_torchrun_cli_one_writer_and_resume_with_another_process_count(tmp_path):
    from mri_cyclegan.checkpoints import load_checkpoint

    t1, t2 = make_image_folders(tmp_path / "data")
    base = lambda run: ["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), *FLAGS]  # noqa: E731
    run, (out,) = _run_job(lambda r: [*base(r), "--epochs", "1"], tmp_path, extra=["--standalone", "--nproc-per-node", "2"])
    assert out.count("done:") == 1  # rank 0 alone reports (and writes)
    assert _steps(run) == [1, 2] and {p.name for p in (run / "checkpoints").iterdir()} == {"last.safetensors", "best.safetensors"}
    assert "global batch 2" in (run / "train.log").read_text()
    # resume the 2-process run in one plain process: the step count goes on
    from mri_cyclegan.cli import main

    assert main([*base(run), "--epochs", "2", "--resume"]) == 0
    _, meta, _ = load_checkpoint(run)
    assert meta["step"] == 4 and _steps(run) == [1, 2, 3, 4]


def test_two_simulated_nodes_train_as_one_job(tmp_path):
    t1, t2 = make_image_folders(tmp_path / "data")
    def node() -> list[str]:
        return ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
                "--rdzv-id", "job1"]

    make = lambda run: ["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), *FLAGS, "--epochs", "1"]  # noqa: E731
    run, outs = _run_job(make, tmp_path, agents=2, extra=node)
    assert sum(o.count("done:") for o in outs) == 1
    assert _steps(run) == [1, 2]
    assert "2 processes x batch 1 = global batch 2" in (run / "train.log").read_text()
