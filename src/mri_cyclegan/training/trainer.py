"""The CycleGAN training loop: one readable train step, epochs, samples, checkpoints, resume."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..baselines import histogram_matching_lut, inverse_histogram_lut, tissue_values
from ..config import Config
from ..data.dataset import PairedBatches, PairedSet, SliceSet, UnpairedBatches
from ..data.patches import apply_whole
from ..directions import Contrast, Direction
from ..errors import InputError, TrainingDivergedError
from ..faithfulness import BOUNDARY_LIMIT, CLASS_NAMES, TISSUE_LIMIT, Drift, drift
from ..io.atomic import atomic_path, remove_stale_temps
from ..models import CycleGAN
from ..runtime import (Distributed, all_mean, autocast, barrier, broadcast_float, eval_mode, init_distributed, resolve_channels_last,
                       resolve_device, resolve_precision)
from .artifacts import LOSS_KEYS, SAMPLE_LABELS, LossLog, append_csv, make_gif, sample_grid, save_png
from ..checkpoints import MODEL, load_checkpoint, load_module, model_tensors, save_checkpoint
from ..run_folder import RunLayout
from .checkpoint import optimizer_from_tensors, optimizer_to_tensors
from .ema import WeightAverage
from .objectives import DiscriminatorObjective, GeneratorObjective
from .pool import ImagePool
from .schedule import lr_factor, lr_factor_time

log = logging.getLogger(__name__)


def _set_requires_grad(nets: list[torch.nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


CALIBRATION_SLICES = 16  # slices per contrast whose whole-slice outputs fit the output calibration (>= 0.5 M pixels)
DRIFT_SLICES = 8  # slices per contrast on which the safety net compares the model with the lookup table


def priors_from_data(t1: SliceSet, t2: SliceSet) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-histogram lookup tables from the unpaired training slices (no pairing used), robust to different
    tissue proportions in the two sets (see :mod:`mri_cyclegan.baselines`)."""
    a, b = t1.tissue_values(), t2.tissue_values()
    return inverse_histogram_lut(a, b), inverse_histogram_lut(b, a)


def _middle(length: int, n: int) -> list[int]:
    """n evenly spaced indices from the middle 60 % (volume ends are mostly background)."""
    return torch.linspace(0.2 * (length - 1), 0.8 * (length - 1), n).round().long().tolist()


def _spread(length: int, n: int) -> list[int]:
    """min(n, length) evenly spaced indices over the whole range."""
    return sorted(set(np.linspace(0, length - 1, min(n, length)).round().astype(int).tolist()))


def class_bounds(t1: SliceSet, t2: SliceSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Each set's tissue-class boundaries in model space (its 3-class mixture, :func:`mri_cyclegan.baselines.tissue_classes`),
    for the tissue-balanced adversarial losses."""
    out = []
    for data, contrast in ((t1, Contrast.T1), (t2, Contrast.T2)):
        b = data.tissue_classes().boundaries()
        log.info("tissue-balanced discriminators: %s class boundaries %s (model space)", contrast.value, ", ".join(f"{v:.3f}" for v in b))
        out.append(torch.tensor(b, dtype=torch.float32))
    return out[0], out[1]


class Trainer:
    """Owns the model, optimizers, pools and data sampler of one run folder."""

    def __init__(self, config: Config, t1: SliceSet, t2: SliceSet, run_dir: str | Path, dist: Distributed | None = None,
                 best_by_drift: bool = True, pairs: PairedSet | None = None) -> None:
        self.config = config
        self.best_by_drift = best_by_drift  # no paired validation: checkpoints/best = the last epoch within the drift limits
        self.drifts: dict[str, Drift] = {}
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)  # every file the run writes, by name
        self.t1, self.t2 = t1, t2
        self.dist = dist or Distributed()
        tc = config.train
        self.device = init_distributed(self.dist, resolve_device(tc.device))
        self.precision = resolve_precision(tc.precision, self.device)
        self.model = CycleGAN.from_config(config, seed=tc.seed)
        if config.model.prior != "none":
            self.model.set_priors(*priors_from_data(t1, t2))
        self.model.to(self.device)
        self.channels_last = resolve_channels_last(tc.channels_last, self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        m = self.model
        bounds = class_bounds(t1, t2) if tc.balance_d else None
        g_objective = GeneratorObjective(m.g_t1_to_t2, m.g_t2_to_t1, tc, bounds, m.nce_heads())
        self.nce_places = g_objective.nce_places if m.nce_heads() else None  # PatchNCE's places (checkpointed)
        self.g_objective: torch.nn.Module = g_objective
        self.d_objective: torch.nn.Module = DiscriminatorObjective(m.d_t1, m.d_t2, tc, bounds)
        if self.dist.enabled:  # the engine's DDP: weights broadcast from rank 0, gradients averaged over ranks
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_objective = DDP(self.g_objective, device_ids=ids, forward_sync_buffers=False)
            self.d_objective = DDP(self.d_objective, device_ids=ids, forward_sync_buffers=False)
        self.average = WeightAverage({"g_t1_to_t2": m.g_t1_to_t2, "g_t2_to_t1": m.g_t2_to_t1}, tc.ema_decay) if tc.ema_decay else None
        betas = (tc.beta1, tc.beta2)
        foreach = self.device.type == "cuda" or None
        self.opt_g = torch.optim.Adam([p for g in self.model.generators() + self.model.nce_heads() for p in g.parameters()], lr=tc.lr, betas=betas,
                                      foreach=foreach)
        self.opt_d = torch.optim.Adam([p for d in self.model.discriminators() for p in d.parameters()], lr=tc.lr, betas=betas, foreach=foreach)
        r = 1000 * self.dist.rank  # each rank has its own image pools
        self.pool_t1 = ImagePool(tc.pool_size, torch.Generator().manual_seed(tc.seed + 1 + r))
        self.pool_t2 = ImagePool(tc.pool_size, torch.Generator().manual_seed(tc.seed + 2 + r))
        self.batches = UnpairedBatches(t1, t2, config.data, tc.batch_size, seed=tc.seed + 3, multiple=self.model.size_multiple,
                                       rank=self.dist.rank, world_size=self.dist.world_size)
        # co-registered pairs (semi-supervised): their patches are appended to every batch, from their own sampler
        self.paired_batches = PairedBatches(pairs, config.data, self.batches.size, tc.paired_batch, seed=tc.seed + 4, rank=self.dist.rank,
                                            world_size=self.dist.world_size) if pairs is not None else None
        self.iters_per_epoch = tc.iters_per_epoch or max(1, math.ceil(max(len(t1), len(t2)) / (tc.batch_size * self.dist.world_size)))
        self.step = 0
        self.epoch = 0
        self.elapsed = 0.0  # training wall-clock seconds, carried across resumes (for --minutes)
        n = min(tc.n_samples, len(t1), len(t2))
        self.samples_t1, self.samples_t2 = t1.windows(_middle(len(t1), n)), t2.windows(_middle(len(t2), n))
        self._drift_inputs: dict[str, tuple] | None = None  # built on first use (the tissue mixture fit costs a second)

    # ------------------------------------------------------------------ one step
    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @property
    def n_pairs(self) -> int:
        """How many co-registered pairs (files) training draws paired patches from (0: unpaired)."""
        return len(self.paired_batches.pairs.t1.stacks) if self.paired_batches is not None else 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(N, K, P, P) T1 and T2 patches and how many of them, at the end of both, are co-registered pairs."""
        real_t1, real_t2 = self.batches.next()
        if self.paired_batches is None:
            return real_t1, real_t2, 0
        p1, p2 = self.paired_batches.next()
        return torch.cat([real_t1, p1]), torch.cat([real_t2, p2]), p1.shape[0]

    def train_step(self, real_t1: torch.Tensor, real_t2: torch.Tensor, n_paired: int = 0) -> dict[str, float]:
        """One CycleGAN iteration on (N, K, P, P) patches (the last ``n_paired`` of both co-registered pairs): update
        both generators, then both discriminators. Under DDP each objective's gradients are averaged over the ranks;
        the returned losses are their means."""
        m = self.model
        real_t1, real_t2 = self._to_device(real_t1), self._to_device(real_t2)

        # Generators: fool the discriminators, and come back to the input after a round trip.
        _set_requires_grad(m.discriminators(), False)
        with autocast(self.device, self.precision):
            loss_g, loss_gan, loss_cycle, loss_idt, loss_faith, loss_paired, fake_t1, fake_t2 = self.g_objective(real_t1, real_t2, m.d_t1, m.d_t2, n_paired)
        self._check_finite("generator", loss_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.average is not None:
            self.average.update()

        # Discriminators: real vs (pooled, per rank) fake.
        _set_requires_grad(m.discriminators(), True)
        pooled_t1 = self.pool_t1.query(fake_t1.detach())
        pooled_t2 = self.pool_t2.query(fake_t2.detach())
        with autocast(self.device, self.precision):
            loss_d = self.d_objective(real_t1, real_t2, pooled_t1, pooled_t2)
        self._check_finite("discriminator", loss_d)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        values = torch.stack([loss_g.detach(), loss_gan.detach(), loss_cycle.detach(), loss_idt.detach(), loss_faith.detach(), loss_paired.detach(),
                              loss_d.detach()]).float()
        return dict(zip(LOSS_KEYS, all_mean(values, self.dist).cpu().tolist()))

    def _check_finite(self, what: str, loss: torch.Tensor) -> None:
        bad = all_mean((~torch.isfinite(loss.detach())).float(), self.dist)  # every rank stops together
        if bad.item() > 0:
            raise TrainingDivergedError(
                f"the {what} loss became {loss.item()} at iteration {self.step}; training stopped and the last good "
                f"checkpoint in {self.run_dir / 'checkpoints'} was kept. Try a lower --lr or --precision fp32"
            )

    # ------------------------------------------------------------------ schedule
    def _set_lr(self) -> float:
        tc = self.config.train
        if tc.minutes:
            lr = tc.lr * lr_factor_time(self.elapsed, tc.minutes * 60, tc.constant_epochs / tc.total_epochs)
        else:
            lr = tc.lr * lr_factor(self.step, tc.constant_epochs * self.iters_per_epoch, tc.decay_epochs * self.iters_per_epoch)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    @property
    def total_steps(self) -> int:
        return self.config.train.total_epochs * self.iters_per_epoch

    def averaged(self):
        """The weights the user gets in the generators for the duration: the running average when ``ema_decay`` is
        set, else the last iterate."""
        return self.average.applied() if self.average is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ whole slices
    def whole(self, fn: Callable[[torch.Tensor], torch.Tensor], window: torch.Tensor) -> torch.Tensor:
        """``fn`` on one whole (K, h, w) slice window at native size, as translation runs it: (K, h, w) on CPU."""
        x = self._to_device(window[None])
        with autocast(self.device, self.precision):
            return apply_whole(fn, x, self.model.size_multiple)[0].float().cpu()

    # ------------------------------------------------------------------ output calibration
    @torch.inference_mode()
    def calibrate(self) -> None:
        """Fit each generator's output calibration: its whole-slice outputs on (up to CALIBRATION_SLICES)
        training slices of its source contrast, histogram-matched to the training slices of its target
        contrast (no pairs used)."""
        m = self.model
        for g, src, tgt in ((m.g_t1_to_t2, self.t1, self.t2), (m.g_t2_to_t1, self.t2, self.t1)):
            c = src.context // 2
            with self.averaged():
                outs = [self.whole(g.bounded, w)[c].numpy() for w in src.windows(_spread(len(src), CALIBRATION_SLICES))]
            lut = histogram_matching_lut(tissue_values(outs), tgt.tissue_values())
            g.calibration.lut.copy_(torch.from_numpy(lut))

    # ------------------------------------------------------------------ the safety net
    @torch.inference_mode()
    def check_drift(self) -> dict[str, Drift]:
        """How far each generator moved its translations of DRIFT_SLICES source slices away from the lookup table
        (per tissue class and at the brain outline, :mod:`mri_cyclegan.faithfulness`). Empty without a prior."""
        m = self.model
        if self.config.model.prior == "none":
            return {}
        if self._drift_inputs is None:
            self._drift_inputs = {
                Direction.T1_TO_T2: (m.g_t1_to_t2, self.t1.windows(_spread(len(self.t1), DRIFT_SLICES)), self.t1.tissue_classes(), CLASS_NAMES[Contrast.T1]),
                Direction.T2_TO_T1: (m.g_t2_to_t1, self.t2.windows(_spread(len(self.t2), DRIFT_SLICES)), self.t2.tissue_classes(), CLASS_NAMES[Contrast.T2]),
            }
        c = self.config.data.context_slices // 2
        out = {}
        with eval_mode(m), self.averaged():
            for direction, (g, windows, classes, names) in self._drift_inputs.items():
                translated = [self.whole(g, w)[c].numpy() for w in windows]
                lookup = [self.whole(g.prior, w)[c].numpy() for w in windows]
                out[direction] = drift([w[c].numpy() for w in windows], translated, lookup, classes, names)
        return out

    def _record_drift(self) -> None:
        """Log the drift, append it to faithfulness.csv, warn past the limits, keep checkpoints/best."""
        self.drifts = self.check_drift()
        if not self.drifts:
            return
        for direction, d in self.drifts.items():
            log.log(logging.INFO if d.within_limits else logging.WARNING, "faithfulness epoch %d %s: %s (limits %.2f per tissue, %.2f outline)%s",
                    self.epoch, direction, " ".join(f"{k}={v:.3f}" for k, v in {**d.tissue, "boundary": d.boundary, "change": d.change}.items()),
                    TISSUE_LIMIT, BOUNDARY_LIMIT, "" if d.within_limits else ": training moved the translation away from the lookup table")
        if self.dist.is_main:
            row = {"epoch": self.epoch, "step": self.step}
            for direction, d in self.drifts.items():
                row.update(d.as_row(direction))
            append_csv(self.layout[RunLayout.FAITHFULNESS_CSV], row, replace_from_epoch=self.epoch)
        if self.best_by_drift and all(d.within_limits for d in self.drifts.values()):
            self.save("best")

    # ------------------------------------------------------------------ samples
    @torch.inference_mode()
    def write_samples(self) -> Path | None:
        """Whole slices at native resolution: real T1 -> fake T2 -> reconstructed T1 | real T2 -> fake T1 -> reconstructed T2."""
        if not len(self.samples_t1):
            return None
        m = self.model
        c = self.config.data.context_slices // 2
        rows = []
        with eval_mode(m), self.averaged():
            for a, b in zip(self.samples_t1, self.samples_t2):
                fake_t2, fake_t1 = self.whole(m.g_t1_to_t2, a), self.whole(m.g_t2_to_t1, b)
                rec_t1, rec_t2 = self.whole(m.g_t2_to_t1, fake_t2), self.whole(m.g_t1_to_t2, fake_t1)
                rows.append([t[c] for t in (a, fake_t2, rec_t1, b, fake_t1, rec_t2)])
        path = self.layout.sample(self.epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(path, sample_grid(rows, labels=SAMPLE_LABELS, title=f"epoch {self.epoch}"))
        return path

    # ------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = model_tensors(self.model)
        if self.average is not None:
            self.average.into_checkpoint(tensors, MODEL)  # model/ = the average (what inference loads), the raw weights beside it
        groups_g = optimizer_to_tensors("opt_g", self.opt_g, tensors)
        groups_d = optimizer_to_tensors("opt_d", self.opt_d, tensors)
        samplers = (("pool_t1", self.pool_t1), ("pool_t2", self.pool_t2), ("batches", self.batches), ("paired_batches", self.paired_batches))
        for name, obj in samplers:
            for k, v in (obj.state_dict() if obj is not None else {}).items():
                tensors[f"{name}/{k}"] = v
        if self.nce_places is not None:
            tensors["nce_places/generator"] = self.nce_places.get_state()
        meta = {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "iters_per_epoch": self.iters_per_epoch,
            "elapsed": self.elapsed,
            "opt_g_groups": groups_g,
            "opt_d_groups": groups_d,
        }
        return tensors, meta

    def save(self, name: str = "last") -> Path:
        """Write a checkpoint (rank 0 only under DDP: one writer, the others wait at the next barrier)."""
        path = self.layout.checkpoint(name)
        if self.dist.is_main:
            tensors, meta = self.state_tensors()
            save_checkpoint(path, tensors, meta)
        return path

    def load(self, path: str | Path) -> None:
        tensors, meta, config = load_checkpoint(path)
        had_heads = any(k.startswith(f"{MODEL}/nce_") for k in tensors)
        if had_heads != bool(self.model.nce_heads()):
            raise InputError(f"--resume: {path} was trained {'with' if had_heads else 'without'} PatchNCE; resume it with "
                             f"{'a --lambda-nce above 0' if had_heads else '--lambda-nce 0'}, or start a new run with --out")
        load_module(self.model, tensors, MODEL, path)
        self.model.to(self.device)
        if self.average is not None:
            self.average.from_checkpoint(tensors, int(meta["step"]))
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.opt_g.load_state_dict(optimizer_from_tensors("opt_g", tensors, meta["opt_g_groups"]))
        self.opt_d.load_state_dict(optimizer_from_tensors("opt_d", tensors, meta["opt_d_groups"]))
        for name, obj in (("pool_t1", self.pool_t1), ("pool_t2", self.pool_t2)):
            obj.load_state_dict({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + "/")}, self.device)
        self.batches.load_state_dict({"generator": tensors["batches/generator"]})
        if self.paired_batches is not None:
            if "paired_batches/generator" not in tensors:
                raise InputError(f"--resume with --paired-t1/--paired-t2: {path} was trained without pairs; start a new run to add them")
            self.paired_batches.load_state_dict({"generator": tensors["paired_batches/generator"]})
        elif "paired_batches/generator" in tensors:
            log.warning("%s was trained with co-registered pairs; resumed without --paired-t1/--paired-t2, it continues unpaired", path)
        if self.nce_places is not None and "nce_places/generator" in tensors:
            self.nce_places.set_state(tensors["nce_places/generator"])
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.iters_per_epoch = int(meta["iters_per_epoch"])
        self.elapsed = float(meta.get("elapsed", 0.0))

    # ------------------------------------------------------------------ the loop
    # Under DDP every rank runs this same sequence. The calls marked COLLECTIVE (barrier, broadcast_float, and the
    # all_mean inside train_step / _check_finite) must be reached equally often, in the same order, on every rank, or
    # the job hangs: so nothing that decides how many there are may depend on the rank. Rank 0's clock decides when a
    # time budget is spent (broadcast), and only rank 0 writes files (``self.dist.is_main``); the others wait at the
    # next barrier.
    def fit(self, resume: bool = False, progress: bool = True, on_epoch: Callable[[Trainer], None] | None = None) -> dict[str, float]:
        """Train to the configured number of epochs (or for ``train.minutes``); returns the last epoch's mean losses."""
        losses = self._start(resume)
        bar = self._progress_bar(progress)
        means: dict[str, float] = {}
        self.model.train()
        clock = time.perf_counter() - self.elapsed
        try:
            while self._more(clock):
                means = self._train_epoch(clock, losses, bar)
                self._end_epoch(clock, losses, means)
                if on_epoch is not None:
                    on_epoch(self)
        finally:
            bar.close()
        self._finish(losses)
        return means

    def _write_config(self) -> None:
        with atomic_path(self.layout[RunLayout.CONFIG]) as tmp:
            tmp.write_text(self.config.to_json())

    def _start(self, resume: bool) -> LossLog | None:
        """config.json, then either the resumed state or epoch 0 (the untrained model, i.e. the lookup table: samples,
        checkpoint, drift). Returns the loss log (rank 0) or None. On resume config.json is rewritten only once the
        checkpoint has loaded: a refused resume leaves the run as it was."""
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.run_dir)  # left by a process killed mid-write
            if not resume:
                self._write_config()
        barrier(self.dist)  # COLLECTIVE: the run folder exists before anyone reads it
        ckpt = self.layout.checkpoint("last")
        if resume:
            if not ckpt.is_file():
                raise InputError(f"--resume: no checkpoint in {self.run_dir / 'checkpoints'}; start without --resume")
            self.load(ckpt)
            if main:
                self._write_config()
            log.info("resumed from %s at epoch %d, iteration %d", ckpt, self.epoch, self.step)
        losses = LossLog(self.layout[RunLayout.LOSSES_CSV], resume_step=self.step if resume else None) if main else None
        if not resume:
            if main:
                self.write_samples()  # epoch 0: untrained
            self.save()
            self._record_drift()  # epoch 0 is the lookup table itself: the first checkpoints/best
        barrier(self.dist)  # COLLECTIVE: epoch 0's checkpoint is on disk
        tc = self.config.train
        log.info(
            "training on %s (%s), %d T1 / %d T2 slices, %d iterations/epoch, %s",
            self.device, self.precision, len(self.t1), len(self.t2), self.iters_per_epoch,
            f"for {tc.minutes:g} min (LR schedule follows elapsed time)" if tc.minutes else f"{tc.total_epochs} epochs",
        )
        if self.dist.enabled:
            log.info("DDP: %d processes x batch %d = global batch %d", self.dist.world_size, tc.batch_size, tc.batch_size * self.dist.world_size)
        return losses

    def _progress_bar(self, progress: bool):
        from tqdm.auto import tqdm

        budget = self.config.train.minutes * 60
        return tqdm(total=None if budget else self.total_steps, initial=self.step, disable=not (progress and self.dist.is_main), unit="it",
                    dynamic_ncols=True)

    def _more(self, clock: float) -> bool:
        """Whether to go on: the epoch count, or rank 0's elapsed time against the budget."""
        tc = self.config.train
        self.elapsed = broadcast_float(time.perf_counter() - clock, self.dist, self.device)  # COLLECTIVE: rank 0's clock rules
        return self.elapsed < tc.minutes * 60 if tc.minutes else self.epoch < tc.total_epochs

    def _train_epoch(self, clock: float, losses: LossLog | None, bar) -> dict[str, float]:
        """One epoch of iterations (fewer when the time budget runs out); returns the mean losses."""
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        done = 0
        for _ in range(self.iters_per_epoch):
            if self.config.train.minutes and not self._more(clock):  # COLLECTIVE (timed runs): every iteration, every rank
                break
            lr = self._set_lr()
            values = self.train_step(*self.next_batch())  # COLLECTIVE: DDP gradient all-reduce and the loss all_mean
            self.step += 1
            done += 1
            if losses is not None:
                losses.append({"step": self.step, "epoch": self.epoch + 1, **values, "lr": lr})
            for k in LOSS_KEYS:
                sums[k] += values[k]
            bar.update(1)
            bar.set_postfix(G=f"{values['loss_g']:.3f}", D=f"{values['loss_d']:.3f}", cyc=f"{values['loss_cycle']:.3f}")
        self.epoch += 1
        return {k: v / max(done, 1) for k, v in sums.items()}

    def _end_epoch(self, clock: float, losses: LossLog | None, means: dict[str, float]) -> None:
        """Calibration, log line, samples, checkpoints, the safety net, the loss plot."""
        tc = self.config.train
        if tc.calibrate:
            self.calibrate()  # the same on every rank: same model, same slices
        total = "" if tc.minutes else f"/{tc.total_epochs}"
        log.info("epoch %d%s: %s", self.epoch, total, " ".join(f"{k}={v:.4f}" for k, v in means.items()))
        if self.dist.is_main:
            self.write_samples()
        self.elapsed = broadcast_float(time.perf_counter() - clock, self.dist, self.device)  # COLLECTIVE: the checkpoint's clock
        self.save()
        self._record_drift()
        if tc.save_every and self.epoch % tc.save_every == 0:
            self.save(f"epoch_{self.epoch:03d}")
        if losses is not None:
            losses.plot(self.layout[RunLayout.LOSSES_PNG])
        barrier(self.dist)  # COLLECTIVE: this epoch's files are written before the hooks read them

    def _finish(self, losses: LossLog | None) -> None:
        """progress.gif and the final loss plot (rank 0); the model keeps the weights the checkpoints hold."""
        if self.average is not None:
            self.average.install()  # after fit(), trainer.model is what translate loads from checkpoints/last
        if losses is not None:
            make_gif(sorted(self.layout[RunLayout.SAMPLES].glob("epoch_*.png")), self.layout[RunLayout.PROGRESS_GIF])
            losses.plot(self.layout[RunLayout.LOSSES_PNG])
        barrier(self.dist)  # COLLECTIVE

