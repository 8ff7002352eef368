import pytest
import torch

from mri_cyclegan.data.dataset import load_domain
from mri_cyclegan.errors import InputError, TrainingDivergedError
from mri_cyclegan.training import trainer as trainer_mod
from mri_cyclegan.checkpoints import load_checkpoint
from mri_cyclegan.training.pool import ImagePool
from mri_cyclegan.training.schedule import lr_factor, lr_factor_time
from mri_cyclegan.training.trainer import Trainer


def test_lr_schedule():
    assert [lr_factor(s, 4, 4) for s in range(9)] == [1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert lr_factor(5, 5, 0) == 0.0
    assert [lr_factor_time(t, 100, 0.5) for t in (0, 49, 50, 75, 100, 120)] == [1, 1, 1, 0.5, 0, 0]


def test_patches_are_native_and_2p5d(tiny_config, nifti_pair, tmp_path):
    cfg = tiny_config.replace(**{"data.context_slices": 3, "data.patch_size": 32})
    t = Trainer(cfg, load_domain(nifti_pair[0], cfg.data), load_domain(nifti_pair[1], cfg.data), tmp_path / "r")
    a, b = t.batches.next()
    assert a.shape == b.shape == (2, 3, 32, 32)
    assert (a > -0.9).float().mean() > 0.3  # drawn around foreground
    assert t.model.g_t1_to_t2.backbone.net[1].in_channels == 3
    assert all(map(lambda v: v == v, t.train_step(a, b).values()))


def test_time_budget_stops_and_decays(tiny_config, image_folders, tmp_path, monkeypatch):
    import itertools

    clock = itertools.count(0.0, 0.02)  # a fake clock: every reading is 20 ms later
    monkeypatch.setattr(trainer_mod.time, "perf_counter", lambda: next(clock))
    cfg = tiny_config.replace(**{"train.minutes": 0.05, "train.iters_per_epoch": 3})  # 3 s
    t = _trainer(cfg, image_folders, tmp_path / "r")
    t.fit(progress=False)
    rows = (tmp_path / "r" / "losses.csv").read_text().splitlines()[1:]
    lrs = [float(r.split(",")[-1]) for r in rows]
    assert t.elapsed >= 3.0 and t.step == len(rows) >= 4
    assert lrs[0] == cfg.train.lr and lrs[-1] < 0.2 * lrs[0]  # constant first, then decays with elapsed time to ~0
    assert sorted(lrs, reverse=True) == lrs
    _, meta, _ = load_checkpoint(tmp_path / "r")
    assert 2.0 < meta["elapsed"] <= t.elapsed  # saved with the last checkpoint, so resume continues the schedule


def test_pool_behaviour():
    pool = ImagePool(2, torch.Generator().manual_seed(0))
    a = torch.ones(2, 1, 4, 4)
    assert torch.equal(pool.query(a), a)  # filling: returns the new images
    out = torch.cat([pool.query(torch.full((1, 1, 4, 4), float(i))) for i in range(2, 40)])
    assert (out.flatten(1)[:, 0] == 1).any()  # old images come back
    assert torch.equal(ImagePool(0, torch.Generator()).query(a), a)


def _trainer(cfg, folders, run, pairs=None):
    return Trainer(cfg, load_domain(folders[0], cfg.data), load_domain(folders[1], cfg.data), run, pairs=pairs)


@pytest.mark.parametrize("ema_decay,paired,nce", [(0.9, False, 0.0), (0.0, True, 0.0), (0.0, False, 1.0)])  # the paired run also draws (and restores) unpaired batches
def test_resume_equals_uninterrupted(tiny_config, image_folders, tmp_path, ema_decay, paired, nce):
    """Interrupted after epoch 1 and resumed == never interrupted, bit for bit: weights, optimizers, LR, the data
    sampler's RNG and the image pools (size 2, so they are full and drawn from by the time of the interruption),
    the weight average with its raw weights, the paired sampler's RNG, and PatchNCE's heads and places."""
    from mri_cyclegan.data.dataset import load_pairs, paired_files

    from tests.data.test_pairs import make_paired_folders

    cfg = tiny_config.replace(**{"train.pool_size": 2, "train.epochs": 3, "train.ema_decay": ema_decay, "train.lambda_nce": nce})
    pairs = load_pairs(paired_files(*make_paired_folders(tmp_path / "pairs")), cfg.data) if paired else None
    full = _trainer(cfg, image_folders, tmp_path / "full", pairs)
    full.fit(progress=False)

    def stop(trainer):
        raise KeyboardInterrupt  # after epoch 1's checkpoint, like Ctrl-C

    half = _trainer(cfg, image_folders, tmp_path / "half", pairs)
    with pytest.raises(KeyboardInterrupt):
        half.fit(progress=False, on_epoch=stop)
    assert len(half.pool_t1.images) == 2
    resumed = _trainer(cfg, image_folders, tmp_path / "half", pairs)
    resumed.fit(resume=True, progress=False)
    assert resumed.step == full.step == 6
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    rows_full = (tmp_path / "full" / "losses.csv").read_text().splitlines()
    rows_resumed = (tmp_path / "half" / "losses.csv").read_text().splitlines()
    assert rows_full == rows_resumed


def test_pairs_are_appended_to_every_batch_and_held_to_their_truth(tiny_config, image_folders, tmp_path, caplog):
    from mri_cyclegan.data.dataset import load_pairs, paired_files

    from tests.data.test_pairs import make_paired_folders

    cfg = tiny_config.replace(**{"train.paired_batch": 3})
    t = _trainer(cfg, image_folders, tmp_path / "r", pairs=load_pairs(paired_files(*make_paired_folders(tmp_path / "pairs")), cfg.data))
    a, b, n = t.next_batch()
    assert n == 3 and a.shape[0] == b.shape[0] == cfg.train.batch_size + 3
    assert ((a[-3:] > -0.95) == (b[-3:] > -0.95)).float().mean() > 0.97  # the paired ones: the same place
    assert t.train_step(a, b, n)["loss_paired"] > 0
    t.fit(progress=False)
    import csv

    rows = list(csv.DictReader((tmp_path / "r" / "losses.csv").open()))
    assert rows and all(float(r["loss_paired"]) > 0 for r in rows)
    assert "paired_batches/generator" in load_checkpoint(tmp_path / "r")[0]
    unpaired = _trainer(tiny_config, image_folders, tmp_path / "u")
    assert unpaired.next_batch()[2] == 0 and unpaired.train_step(*unpaired.next_batch())["loss_paired"] == 0
    # resuming across the two: a paired run without its pairs continues unpaired (said); pairs cannot join an unpaired run
    with caplog.at_level("WARNING"):
        unpaired.load(tmp_path / "r" / "checkpoints" / "last.safetensors")
    assert "continues unpaired" in caplog.text
    unpaired.save()
    with pytest.raises(InputError, match="trained without pairs"):
        _trainer(cfg, image_folders, tmp_path / "p", pairs=t.paired_batches.pairs).load(tmp_path / "u" / "checkpoints" / "last.safetensors")


def test_same_seed_same_losses(tiny_config, image_folders, tmp_path):
    a = _trainer(tiny_config, image_folders, tmp_path / "a")
    b = _trainer(tiny_config, image_folders, tmp_path / "b")
    la = [a.train_step(*a.batches.next()) for _ in range(2)]
    lb = [b.train_step(*b.batches.next()) for _ in range(2)]
    assert la == lb
    c = _trainer(tiny_config.replace(**{"train.seed": 5}), image_folders, tmp_path / "c")
    assert [c.train_step(*c.batches.next()) for _ in range(2)] != la


def test_checkpoint_holds_everything(tiny_config, image_folders, tmp_path):
    t = _trainer(tiny_config, image_folders, tmp_path / "r")
    t.fit(progress=False)
    tensors, meta, cfg = load_checkpoint(tmp_path / "r")
    assert cfg == tiny_config and meta["step"] == 4 and meta["epoch"] == 2
    prefixes = {k.split("/")[0] for k in tensors}
    assert {"model", "opt_g", "opt_d", "pool_t1", "pool_t2", "batches"} <= prefixes
    assert (tmp_path / "r" / "progress.gif").is_file() and (tmp_path / "r" / "losses.png").is_file()
    assert len(list((tmp_path / "r" / "samples").glob("epoch_*.png"))) == 3  # epochs 0, 1, 2


def test_nan_loss_stops_and_keeps_checkpoint(tiny_config, image_folders, tmp_path, monkeypatch):
    t = _trainer(tiny_config, image_folders, tmp_path / "r")
    calls = {"n": 0}
    from mri_cyclegan.training import objectives

    real = objectives.cycle_loss

    def flaky(a, b):
        calls["n"] += 1
        return real(a, b) * (float("nan") if calls["n"] > 4 else 1.0)  # NaN in epoch 2

    monkeypatch.setattr(objectives, "cycle_loss", flaky)
    with pytest.raises(TrainingDivergedError, match="NaN|nan"):
        t.fit(progress=False)
    _, meta, _ = load_checkpoint(tmp_path / "r")
    assert meta["epoch"] == 1  # last good checkpoint kept


def test_resume_without_checkpoint(tiny_config, image_folders, tmp_path):
    with pytest.raises(InputError, match="resume"):
        _trainer(tiny_config, image_folders, tmp_path / "new").fit(resume=True, progress=False)


def test_calibration_matches_target_histogram_in_eval_only(tiny_config, image_folders, tmp_path):
    import numpy as np

    t = _trainer(tiny_config, image_folders, tmp_path / "r")
    g = t.model.g_t1_to_t2
    x = t.t1.windows([0, 2])[0][None]  # one whole 48x40 slice
    t.model.eval()
    before = g(x).detach()
    torch.testing.assert_close(before, g.raw(x))  # identity until fitted
    with torch.no_grad():
        lut = g.prior.lut
        g.prior.lut.copy_(torch.where(lut > -0.99, 0.5 * lut + 0.2, lut))  # pretend training compressed and shifted tissue
    t.calibrate()
    t.model.eval()
    calibrated, raw = g(x).detach().numpy(), g.raw(x).detach().numpy()
    tgt = t.t2.foreground_values()
    q = [0.25, 0.5, 0.75]
    err = lambda a: np.abs(np.quantile(a[a > -0.9], q) - np.quantile(tgt[tgt > -0.9], q)).max()  # noqa: E731
    assert err(calibrated) < 0.05 < err(raw)
    t.model.train()
    torch.testing.assert_close(g(x), g.raw(x))  # training never sees the calibration


def test_each_pool_gets_its_own_contrast_fakes(tiny_config, image_folders, tmp_path):
    """After one step, the T1 discriminator's pool holds the fake T1s (G_T2->T1 of the real T2 batch) and the T2 pool
    the fake T2s: pools fed the other contrast's fakes, or the real images, would fail."""
    t = _trainer(tiny_config, image_folders, tmp_path / "r")
    g = torch.Generator().manual_seed(0)
    real_t1 = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    real_t2 = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    captured = {}
    forward = t.g_objective.forward

    def spy(*args, **kwargs):
        out = forward(*args, **kwargs)
        captured["fake_t1"], captured["fake_t2"] = out[-2].detach().clone(), out[-1].detach().clone()
        return out

    t.g_objective.forward = spy
    t.train_step(real_t1, real_t2)
    assert torch.equal(torch.cat(t.pool_t1.images), captured["fake_t1"])
    assert torch.equal(torch.cat(t.pool_t2.images), captured["fake_t2"])
    assert not torch.equal(captured["fake_t1"], captured["fake_t2"])
