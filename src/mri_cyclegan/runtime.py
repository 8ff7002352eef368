"""Device and precision selection, autocast, and the process layout of distributed (torchrun) runs."""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Iterator

import torch

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from .errors import InputError

        raise InputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' is bf16 where the hardware runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_channels_last(setting: bool | str, device: torch.device) -> bool:
    """'auto' is channels-last on CUDA only: on CPU, instance norm and the reflection pads in NHWC cost more
    than the convolutions gain (measured in benchmarks/train_speed.py, README Speed)."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast (fp32 master weights; bf16 needs no loss scaling), or nothing for fp32."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


# ---------------------------------------------------------------------------------------------------- distributed
@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` in eval mode inside the block, every submodule back in the mode it had before afterwards (a
    translator or a sample grid must not leave a model that is being trained in eval mode, or the reverse)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a ``torchrun`` job (one process per GPU, or per CPU slot): rank, world size,
    rank on its node. ``Distributed()`` is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_from_env() -> Distributed:
    """The job layout torchrun (or any ``env://`` launcher) puts in RANK / WORLD_SIZE / LOCAL_RANK."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(dist: Distributed, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on CPU) and return this rank's device (cuda:LOCAL_RANK)."""
    if not dist.enabled:
        return device
    import torch.distributed as td

    if device.type == "cuda":
        torch.cuda.set_device(dist.local_rank)
        device = torch.device("cuda", dist.local_rank)
    if not td.is_initialized():
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    log.info("distributed: rank %d of %d (local rank %d) on %s, backend %s", dist.rank, dist.world_size, dist.local_rank,
             device, td.get_backend())
    return device


def barrier(dist: Distributed) -> None:
    if dist.enabled:
        import torch.distributed as td

        td.barrier()


def all_mean(x: torch.Tensor, dist: Distributed) -> torch.Tensor:
    """Mean of ``x`` over all ranks (a copy; ``x`` itself when not distributed)."""
    if not dist.enabled:
        return x
    import torch.distributed as td

    y = x.detach().clone()
    td.all_reduce(y, op=td.ReduceOp.SUM)
    return y / dist.world_size


def broadcast_float(value: float, dist: Distributed, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (e.g. the training clock, so that all ranks stop together)."""
    if not dist.enabled:
        return value
    import torch.distributed as td

    t = torch.tensor([value], dtype=torch.float64, device=device)
    td.broadcast(t, src=0)
    return float(t.item())


def hard_exit(code: int) -> None:
    """End a distributed worker after its last barrier without tearing the process group down: on this VM a
    finished gloo worker occasionally aborted at teardown ("terminate called without an active exception",
    SIGABRT), which made torchrun report a finished job as failed. Logs and output are flushed first; the
    operating system closes the sockets."""
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
