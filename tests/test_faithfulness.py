"""Faithful training: the anchor on the lookup table, the structure loss, checkerboard-free upsampling, and the safety
net (drift from the lookup table per tissue class, its warning, checkpoints/best, the verdict)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mri_cyclegan.config import Config
from mri_cyclegan.faithfulness import BOUNDARY_LIMIT, TISSUE_LIMIT, Drift, drift, verdict
from mri_cyclegan.losses import anchor_loss, gaussian_blur, structure_loss


def _tissue_slice(size: int = 64) -> np.ndarray:
    """Model-space slice: background -1, a disc of 'CSF' -0.4 around 'GM' 0.1 with a 'WM' core 0.7 (T1-like)."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(y - size / 2, x - size / 2)
    s = np.full((size, size), -1.0, np.float32)
    s[r < 0.42 * size] = -0.4
    s[r < 0.34 * size] = 0.1
    s[r < 0.2 * size] = 0.7
    return s


def test_gaussian_blur_keeps_the_mean_and_removes_a_checkerboard():
    x = torch.rand(2, 1, 40, 48)
    y = gaussian_blur(x, 2.0)
    assert y.shape == x.shape
    assert y[..., 10:-10, 10:-10].mean().item() == pytest.approx(x[..., 10:-10, 10:-10].mean().item(), abs=0.02)
    checker = torch.from_numpy(np.indices((40, 48)).sum(0) % 2 * 2 - 1.0).float()[None, None]
    assert gaussian_blur(checker, 2.0).abs().max().item() < 1e-3


def test_anchor_loss_rises_when_a_tissue_class_moves_not_when_detail_is_added():
    prior = torch.from_numpy(_tissue_slice())[None, None]
    assert anchor_loss(prior, prior).item() == 0.0
    moved = prior.clone()
    moved[..., 24:40, 24:40] += 0.3  # a blob (a lesion, a tissue class) moved in intensity
    detail = prior + 0.1 * torch.from_numpy(np.indices((64, 64)).sum(0) % 2 * 2 - 1.0).float()  # pixel-scale texture
    assert anchor_loss(moved, prior).item() > 0.01
    assert anchor_loss(detail, prior).item() < anchor_loss(moved, prior).item() / 100


def test_structure_loss_keeps_flipped_edges_and_penalises_moved_or_erased_ones():
    x = torch.from_numpy(_tissue_slice())[None, None]
    inverted = -x  # T1 -> T2 reverses the tissue order: the same edges, opposite polarity
    moved = torch.roll(x, shifts=(5, 5), dims=(2, 3))
    flat = torch.zeros_like(x)
    kept = structure_loss(x, inverted).item()
    assert kept < 0.05
    assert structure_loss(x, moved).item() > 0.5
    assert structure_loss(x, flat).item() > 0.95
    # one value per sample, averaged: a batch of two equals the mean of the two (equal DDP shards average right)
    both = structure_loss(torch.cat([x, x]), torch.cat([inverted, moved])).item()
    assert both == pytest.approx((kept + structure_loss(x, moved).item()) / 2, rel=1e-5)


def test_resize_upsampling_has_no_transposed_convolution_and_keeps_the_shape():
    from mri_cyclegan.models.networks import ResnetGenerator

    resize, transpose = ResnetGenerator(8, 1, upsample="resize"), ResnetGenerator(8, 1, upsample="transpose")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in resize.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in transpose.modules())
    x = torch.randn(1, 1, 36, 44)
    assert resize(x).shape == transpose(x).shape == x.shape
    with pytest.raises(ValueError):
        ResnetGenerator(8, 1, upsample="pixelshuffle")


def test_old_checkpoint_configs_keep_their_architecture_and_objective():
    d = Config().to_dict()
    del d["model"]["upsample"], d["model"]["outline"], d["train"]["lambda_anchor"], d["train"]["lambda_structure"]
    del d["train"]["anchor_rim"], d["train"]["anchor_rim_width"], d["train"]["anchor_rim_border"]
    old = Config.from_saved(d)
    assert old.model.upsample == "transpose" and old.train.lambda_anchor == 0 and old.train.lambda_structure == 0
    assert old.train.anchor_rim == 0 and old.train.anchor_rim_width == 3 and not old.train.anchor_rim_border
    last_session = Config().to_dict()  # written with the rim anchor, before it ran along the patch edges
    del last_session["train"]["anchor_rim_border"]
    assert not Config.from_saved(last_session).train.anchor_rim_border and Config().train.anchor_rim_border
    assert old.model.outline == "table"  # trained on the pointwise prior: its residual expects that prior
    assert Config.from_dict(d).model.upsample == "resize"  # a user's partial config file gets today's defaults
    unbounded = Config().to_dict()  # a run from before the residual bound translates as it did
    del unbounded["model"]["residual_bound"]
    assert Config.from_saved(unbounded).model.residual_bound == 0 < Config().model.residual_bound == 0.1
    assert Config.from_saved(Config().to_dict()) == Config()


# ------------------------------------------------------------------------------------------ the safety net
def _classes(s: np.ndarray):
    from mri_cyclegan.baselines import fit_classes, tissue_values

    return fit_classes(tissue_values([s]).tissue)


def test_drift_finds_the_tissue_class_that_moved():
    s = _tissue_slice(96)
    classes = _classes(s)
    lut = -s  # any lookup table; drift compares the model with it
    same = drift([s], [lut], [lut], classes, ("csf", "gm", "wm"))
    assert same.within_limits and max(same.tissue.values()) == 0 and same.boundary == 0
    moved = lut.copy()
    moved[s == 0.7] += 0.3  # WM translated 0.15 brighter on the [0, 1] scale
    d = drift([s], [moved], [lut], classes, ("csf", "gm", "wm"))
    assert d.tissue["wm"] == pytest.approx(0.15, abs=0.01)
    assert d.tissue["csf"] < 0.01 and d.tissue["gm"] < 0.01
    assert d.worst[0] == "wm" and not d.within_limits


def test_drift_sees_the_outline_turn_dark():
    from scipy import ndimage

    s = _tissue_slice(96)
    lut = -s
    fg = s > -0.9
    rim = fg & ~ndimage.binary_erosion(fg, iterations=3)
    dark = lut.copy()
    dark[rim] = -1.0  # the bright CSF rim of a T2 turned black
    d = drift([s], [dark], [lut], _classes(s), ("csf", "gm", "wm"))
    assert d.boundary > BOUNDARY_LIMIT and not d.within_limits


def test_safety_net_rim_is_the_training_anchors_rim():
    """One definition of the outline rim: moving exactly the anchor's rim (losses.outline_rim at the safety net's
    width) is all boundary drift (its full size) and no tissue drift."""
    from mri_cyclegan.faithfulness import RIM
    from mri_cyclegan.losses import outline_rim

    s = _tissue_slice(96)
    lut = -s
    rim = outline_rim(torch.from_numpy(s)[None, None], RIM)[0, 0].numpy() > 0
    moved = lut + 0.4 * rim  # 0.2 on the [0, 1] scale, on the rim only
    d = drift([s], [moved], [lut], _classes(s), ("csf", "gm", "wm"))
    assert d.boundary == pytest.approx(0.2, abs=1e-6)
    assert max(d.tissue.values()) == pytest.approx(0.0, abs=1e-9)
    slight = drift([s], [lut + 0.12 * rim], [lut], _classes(s), ("csf", "gm", "wm"))  # 0.06: an (e) run that moved it 0.062 lost 1.5 dB
    assert slight.boundary == pytest.approx(0.06, abs=1e-6) and not slight.within_limits


def test_verdict_names_the_safer_choice():
    ok = {"t1_to_t2": Drift({"csf": 0.01, "gm": 0.02, "wm": 0.0}, 0.03, 0.02), "t2_to_t1": Drift({"wm": 0.0, "gm": 0.01, "csf": 0.0}, 0.02, 0.01)}
    safe, text = verdict(ok)
    assert safe and text.startswith("this model is the safer choice") and "paired scans" in text  # what drift cannot tell
    bad = {**ok, "t2_to_t1": Drift({"wm": 0.0, "gm": 2 * TISSUE_LIMIT, "csf": 0.0}, 0.02, 0.05)}
    safe, text = verdict(bad)
    assert not safe and "lookup table is the safer choice" in text and "t2_to_t1 GM moved" in text
    # trained with pairs, a drift may be their correction: no claim either way, a held-out pair decides
    safe, text = verdict(bad, n_pairs=2)
    assert not safe and "safer choice" not in text and "2 co-registered pair(s)" in text and "t2_to_t1 GM moved" in text
    assert "--val-t1" in text and verdict(ok, n_pairs=2)[1].startswith("this model is the safer choice")
    # at the default residual bound (0.1 model units = 0.05 on the [0, 1] scale) no drift passes the limits; a tissue that
    # reached the bound is named, since "within the limits" then means held there, not restrained
    capped = {**ok, "t2_to_t1": Drift({"wm": 0.0, "gm": TISSUE_LIMIT, "csf": 0.0}, 0.02, 0.04)}
    safe, text = verdict(capped, bound=0.1)
    assert safe and "t2_to_t1 GM reached the residual bound" in text and "t1_to_t2" not in text.split("reached")[0].split(";")[-1]
    assert "residual bound" not in verdict(capped)[1] and "residual bound" not in verdict(ok, bound=0.1)[1]


def test_verdict_says_when_the_model_is_its_lookup_table():
    """A model whose translations changed by less than UNCHANGED on average in both directions is the table itself: the
    verdict says so instead of 'it adds detail' (what the faithfulness cases' default models were: mean change 1e-4)."""
    from mri_cyclegan.faithfulness import UNCHANGED

    same = {"t1_to_t2": Drift({"csf": 0.0, "gm": 0.0, "wm": 0.0}, 0.0002, 0.0003),
            "t2_to_t1": Drift({"wm": 0.0, "gm": 0.0001, "csf": 0.0}, 0.0001, 0.0004)}
    safe, text = verdict(same, bound=0.1)
    assert safe and text.startswith("this model is its lookup table") and "0.0004" in text and "adds detail" not in text
    one_changed = {**same, "t2_to_t1": Drift({"wm": 0.0, "gm": 0.0001, "csf": 0.0}, 0.0001, 2 * UNCHANGED)}  # texture, means kept
    safe, text = verdict(one_changed)
    assert safe and text.startswith("this model is the safer choice") and "adds detail" in text


def test_drift_change_is_the_mean_absolute_change_over_the_head():
    s = _tissue_slice(96)
    lut = -s
    head = s > -0.9
    rng = np.random.default_rng(0)
    texture = np.where(rng.random(s.shape) < 0.5, 0.02, -0.02).astype(np.float32) * head  # zero-mean: no tissue moves
    d = drift([s], [lut + texture], [lut], _classes(s), ("csf", "gm", "wm"))
    assert d.change == pytest.approx(0.01, abs=1e-6)  # 0.02 model units = 0.01 on the [0, 1] scale, everywhere in the head
    assert max(d.tissue.values()) < 0.002 and d.within_limits
    assert drift([s], [lut], [lut], _classes(s), ("csf", "gm", "wm")).change == 0


def test_trainer_safety_net_warns_records_and_keeps_best_within_limits(tmp_path, tiny_config, caplog):
    """Epoch 0 (the lookup table) is within the limits: faithfulness.csv gets its row and best is written. A residual
    that brightens every T2 output by 0.5 then moves every tissue class, as far as the residual bound lets it (0.2 in
    model units, 0.1 on the [0, 1] scale: the safety net measures what the user gets; the default bound, 0.1, keeps
    every drift within the limits): a warning, and best is not replaced."""
    import csv

    from mri_cyclegan.data.dataset import SliceSet, Stack
    from mri_cyclegan.models.networks import last_conv
    from mri_cyclegan.checkpoints import load_checkpoint
    from mri_cyclegan.training.trainer import Trainer

    slices = np.stack([_tissue_slice(48) + np.random.default_rng(i).normal(0, 0.02, (48, 48)).astype(np.float32) for i in range(4)])
    t1 = SliceSet([Stack("t1", torch.from_numpy(np.clip(slices, -1, 1)).half(), list(range(4)))])
    t2 = SliceSet([Stack("t2", torch.from_numpy(np.clip(-slices * (slices > -0.9) - (slices <= -0.9), -1, 1)).half(), list(range(4)))])
    trainer = Trainer(tiny_config.replace(**{"model.residual_bound": 0.2}), t1, t2, tmp_path / "run")
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    trainer._record_drift()
    assert all(d.within_limits for d in trainer.drifts.values())
    assert (tmp_path / "run/checkpoints/best.safetensors").is_file()
    with torch.no_grad():
        last_conv(trainer.model.g_t1_to_t2.backbone).bias.fill_(0.5)  # every T1 -> T2 output 0.5 brighter
    trainer.epoch, trainer.step = 1, 2
    with caplog.at_level(logging.WARNING, logger="mri_cyclegan"):
        trainer._record_drift()
    assert any("faithfulness epoch 1 t1_to_t2" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert not trainer.drifts["t1_to_t2"].within_limits and trainer.drifts["t2_to_t1"].within_limits
    assert 0.09 < max(trainer.drifts["t1_to_t2"].tissue.values()) <= 0.1 + 1e-3
    _, meta, _ = load_checkpoint(tmp_path / "run/checkpoints/best.safetensors")
    assert meta["epoch"] == 0  # best stays the last epoch within the limits
    rows = list(csv.DictReader(open(tmp_path / "run/faithfulness.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and float(rows[1]["t1_to_t2_wm"]) > 0.09


def test_report_shows_the_runs_drift_and_marks_epochs_past_the_limits(tmp_path, run_dir):
    """evaluate --model RUN puts the run's faithfulness.csv in report.html, with the epochs past the limits in red."""
    import shutil

    from mri_cyclegan.report import write_report

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    rows = (run / "faithfulness.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,t1_to_t2_csf") and len(rows) == 3  # header, epoch 0, epoch 1
    cols = rows[0].split(",")
    bad = rows[-1].split(",")
    bad[cols.index("t2_to_t1_gm")] = "0.3"  # an epoch that moved T2 -> T1 grey matter
    (run / "faithfulness.csv").write_text("\n".join([*rows[:-1], ",".join(bad)]) + "\n")
    html_text = write_report(tmp_path / "ev", [], run_dir=run).read_text()
    assert "Faithfulness to the lookup table during training" in html_text
    assert html_text.count("background:#fdd") == 1 and "0.300" in html_text
    # the mean change has no limit (a model may add detail everywhere); a row written before the column existed (a run
    # resumed by this version) shows a blank, not a crash
    bad[cols.index("t2_to_t1_change")] = "0.3"
    old = rows[1].split(",")
    old[cols.index("t1_to_t2_change")] = ""
    (run / "faithfulness.csv").write_text("\n".join([rows[0], ",".join(old), ",".join(bad)]) + "\n")
    html_text = write_report(tmp_path / "ev2", [], run_dir=run).read_text()
    assert html_text.count("background:#fdd") == 1 and "<td>–</td>" in html_text
