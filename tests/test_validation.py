"""Validation across epochs (val.csv, val.png, best checkpoint), evaluate --all-checkpoints, TensorBoard, model card."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TRAIN_FLAGS
from PIL import Image
from phantoms import pair_2d

from mri_cyclegan.cli import main


def _val_folders(root: Path) -> tuple[Path, Path]:
    a, b = root / "val_t1", root / "val_t2"
    a.mkdir(parents=True)
    b.mkdir()
    for i in range(3):
        t1, t2 = pair_2d((40, 44), seed=100 + i)
        Image.fromarray(np.clip(t1 / 1000 * 255, 0, 255).astype(np.uint8)).save(a / f"case{i}.png")
        Image.fromarray(np.clip(t2 * 50, 0, 65535).astype(np.uint16)).save(b / f"case{i}.png")
    return a, b


def test_validation_best_checkpoint_all_checkpoints_and_model_card(tmp_path, image_folders):
    t1, t2 = image_folders
    vt1, vt2 = _val_folders(tmp_path)
    run = tmp_path / "run"
    flags = [f for f in TRAIN_FLAGS]
    flags[flags.index("--epochs") + 1] = "3"
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), "--quiet", "--save-every", "1",
                 "--val-t1", str(vt1), "--val-t2", str(vt2), *flags]) == 0
    rows = list(csv.DictReader(open(run / "val.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for r in rows:
        assert all(np.isfinite(float(r[k])) for k in ("t1_to_t2_psnr", "t1_to_t2_ssim", "t2_to_t1_mae", "mean_psnr"))
    assert (run / "val.png").stat().st_size > 1000
    assert (run / "samples" / "val_epoch_003.png").is_file()  # true vs predicted, both directions
    best_epoch = max(rows, key=lambda r: float(r["mean_psnr"]))["epoch"]

    out = tmp_path / "ckpts"
    assert main(["evaluate", "--all-checkpoints", "--model", str(run), "--input", str(vt1), "--ref", str(vt2), "--out", str(out),
                 "--direction", "t1-to-t2", "--quiet"]) == 0
    scored = json.loads((out / "checkpoints.json").read_text())["checkpoints"]
    names = {r["checkpoint"]: r for r in scored}
    assert set(names) == {"epoch_001.safetensors", "epoch_002.safetensors", "epoch_003.safetensors", "last.safetensors", "best.safetensors"}
    assert names["best.safetensors"]["epoch"] == int(best_epoch)
    assert sum(r["best"] for r in scored) == 1
    top = max(scored, key=lambda r: r["t1_to_t2_psnr"])
    assert top["best"]
    # the same protocol in training and in evaluate: epoch 2's validation row is what its checkpoint scores now
    assert names["epoch_002.safetensors"]["t1_to_t2_psnr"] == pytest.approx(float(rows[1]["t1_to_t2_psnr"]), abs=1e-3)

    # ... and it is evaluate's protocol: translate + evaluate of the 16-bit T2 files gives the same T2 -> T1 PSNR
    fake = tmp_path / "fake_t1"
    assert main(["translate", "--model", str(run / "checkpoints" / "epoch_002.safetensors"), "--direction", "t2-to-t1", "--quiet",
                 str(vt2), str(fake)]) == 0
    assert main(["evaluate", "--pred", str(fake), "--ref", str(vt1), "--out", str(tmp_path / "ev"), "--direction", "t2-to-t1", "--quiet"]) == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    summary = ev["t2_to_t1"]["model"]
    assert summary["psnr"] == pytest.approx(float(rows[1]["t2_to_t1_psnr"]), abs=0.05)

    card = (run / "MODEL_CARD.md").read_text()
    assert "Not for diagnosis" in card and "hallucinate" in card
    assert "| 5 | 5 | png |" in card.replace(f"T1 `{t1}`", "T1")  # T1 set: 5 files, 5 usable slices, PNG
    assert "3 epoch(s), 6 iterations" in card and "(best)" in card


def test_model_card_without_validation(run_dir):
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "None during training" in card and "Not for diagnosis" in card
    assert "translations held within 0.1 of the lookup table's" in card  # the default residual bound, said where users look
    assert "| outline | mean change | within limits |" in card and "**Verdict:**" in card  # the safety net, with its change
    assert "- Held to the input: anchor on the lookup table 1 (σ 2 px, outline rim × 30), structure 1." in card  # the defaults' objective
    import re

    row = next(line for line in card.splitlines() if line.startswith("| t1_to_t2 |"))
    assert re.fullmatch(r"\| t1_to_t2 (\| \d\.\d{3} ){4}\| \d\.\d{4} \| (yes|\*\*no\*\*) \|", row), row


def test_tensorboard_logs_losses_lr_and_samples(tmp_path, image_folders):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t1, t2 = image_folders
    run = tmp_path / "run"
    flags = list(TRAIN_FLAGS)
    flags[flags.index("--epochs") + 1] = "2"
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), "--quiet", "--tensorboard", *flags]) == 0
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/loss_g", "loss/loss_d", "lr"} <= set(tags["scalars"]) and "samples" in tags["images"]
    assert [e.step for e in acc.Scalars("loss/loss_g")] == [1, 2, 3, 4]  # every iteration once
    assert len(acc.Images("samples")) == 2


def test_validation_flags_need_each_other_and_bad_ones_leave_no_run_folder(tmp_path, image_folders):
    t1, t2 = image_folders
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(tmp_path / "r"), "--quiet", "--val-t1", str(t1), *TRAIN_FLAGS]) == 2
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(tmp_path / "r"), "--quiet", "--val-t1", str(t1),
                 "--val-t2", str(tmp_path / "missing"), *TRAIN_FLAGS]) == 2
    assert not (tmp_path / "r").exists()


def test_best_checkpoint_follows_the_best_score_not_the_last(tmp_path):
    """Scripted scores 20, 25, 22 dB: 'best' is written at epoch 2 only, and val.csv keeps all three epochs."""
    import torch

    from mri_cyclegan.config import Config
    from mri_cyclegan.validation import EpochValidation

    class Scripted:
        paired, best_key, higher_is_better, examples = True, "mean_psnr", True, []

        def __init__(self):
            self.values = iter([20.0, 25.0, 22.0])

        def score(self, translator):
            v = next(self.values)
            return {f"{d}_{k}": v for d in ("t1_to_t2", "t2_to_t1") for k in ("psnr", "ssim", "mae")} | {"mean_psnr": v}

    class FakeTrainer:
        model, config, device, precision = torch.nn.Identity(), Config(), torch.device("cpu"), "fp32"
        epoch = step = 0
        saved: list = []

        def save(self, name="last"):
            self.saved.append((name, self.epoch))

        def averaged(self):  # no weight average: the weights as they are
            import contextlib

            return contextlib.nullcontext()

    trainer = FakeTrainer()
    hook = EpochValidation(Scripted(), tmp_path)
    for e in (1, 2, 3):
        trainer.epoch, trainer.step = e, 10 * e
        hook(trainer)
    assert trainer.saved == [("best", 1), ("best", 2)]
    assert [r["mean_psnr"] for r in hook.rows()] == [20.0, 25.0, 22.0]


def test_unpaired_validation_is_a_labelled_proxy(tmp_path, image_folders):
    """--val-t1/--val-t2 whose names do not pair: cycle error and histogram distance, called a proxy everywhere."""
    t1, t2 = image_folders
    vt1, vt2 = _val_folders(tmp_path)
    for f in vt2.iterdir():
        f.rename(f.with_name("other_" + f.name))
    run = tmp_path / "run"
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(run), "--quiet", "--val-t1", str(vt1), "--val-t2", str(vt2),
                 *TRAIN_FLAGS]) == 0
    [row] = list(csv.DictReader(open(run / "val.csv")))
    assert {"t1_to_t2_cycle_mae", "t2_to_t1_hist_w1", "mean_proxy"} <= set(row) and "t1_to_t2_psnr" not in row
    # the histogram prior makes G'(G(x)) almost x, and puts the translation's histogram near the target's
    assert 0 < float(row["t1_to_t2_cycle_mae"]) < 0.05 and 0 < float(row["t2_to_t1_hist_w1"]) < 0.1
    assert "Unpaired proxy only" in (run / "MODEL_CARD.md").read_text()
    assert "unpaired PROXY" in (run / "train.log").read_text()


def test_bids_contrast_tags_pair_by_subject():
    from mri_cyclegan.evaluate import match_pairs

    pairs = match_pairs([Path("sub-01_T1w.nii.gz"), Path("sub-02_T1w.nii.gz")], [Path("sub-02_T2w.nii.gz"), Path("sub-01_T2w.nii.gz")])
    assert [(a.name[:6], b.name[:6]) for a, b in pairs] == [("sub-01", "sub-01"), ("sub-02", "sub-02")]


def test_tensorboard_missing_is_one_line_before_the_run_folder(tmp_path, image_folders, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    t1, t2 = image_folders
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(tmp_path / "r"), "--quiet", "--tensorboard", *TRAIN_FLAGS]) == 2
    assert not (tmp_path / "r").exists()


def test_python_api_gets_the_model_card_with_the_same_hooks_as_the_cli(tiny_config, image_folders, tmp_path):
    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.epoch_hooks import EpochHooks
    from mri_cyclegan.training.trainer import Trainer

    cfg = tiny_config.replace(**{"train.epochs": 1, "train.epochs_decay": 0})
    trainer = Trainer(cfg, load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data), tmp_path / "run")
    epochs = []
    hooks = EpochHooks(trainer, sources=("my T1 folder", "my T2 folder"))
    trainer.fit(progress=False, on_epoch=lambda t: (epochs.append(t.epoch), hooks(t)))
    hooks.finish(trainer)
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert epochs and "my T1 folder" in card and "my T2 folder" in card


def test_validation_and_evaluate_share_one_protocol_on_volumes(run_dir, tmp_path):
    """Per-slice means are 'psnr' and whole volumes 'psnr_3d' in val.csv exactly as in evaluate's metrics.json
    (val.csv's 'psnr' once was the 3D value while evaluate's was the slice mean)."""
    import nibabel as nib
    from phantoms import volume_pair

    from mri_cyclegan.evaluate import evaluate_paths
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.io import read_volume
    from mri_cyclegan.validation import PairedValidation

    a, b, pred_dir = tmp_path / "t1", tmp_path / "t2", tmp_path / "pred"
    for d in (a, b, pred_dir):
        d.mkdir()
    aff = np.diag([1.0, 1.2, 2.0, 1.0])
    t1, t2 = volume_pair((40, 36, 12), seed=3)
    nib.save(nib.Nifti1Image(t1, aff), a / "s1.nii.gz")
    nib.save(nib.Nifti1Image(t2, aff), b / "s1.nii.gz")
    translator = Translator.from_checkpoint(run_dir, device="cpu")
    val = PairedValidation(a, b, directions=("t1_to_t2",)).score(translator)
    nib.save(nib.Nifti1Image(translator.translate(read_volume(a / "s1.nii.gz"), "t1_to_t2"), aff),
             pred_dir / "s1.nii.gz")
    m = evaluate_paths(pred_dir, b, tmp_path / "ev", direction="t1_to_t2")["model"]
    assert val["t1_to_t2_psnr"] == pytest.approx(m["psnr"], abs=1e-6) and val["t1_to_t2_psnr_3d"] == pytest.approx(m["psnr_3d"], abs=1e-6)
    assert val["t1_to_t2_ssim"] == pytest.approx(m["ssim"], abs=1e-6) and val["t1_to_t2_psnr"] != pytest.approx(val["t1_to_t2_psnr_3d"], abs=1e-3)
