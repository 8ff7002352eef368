import numpy as np
import pytest
import torch

from mri_cyclegan.cli import main
from mri_cyclegan.inference import Translator
from mri_cyclegan.runtime import resolve_precision


def test_onnx_matches_pytorch(run_dir, tmp_path, image_folders):
    ort = pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "g.onnx"
    assert main(["export", "--model", str(run_dir), "--direction", "t2-to-t1", "--format", "onnx", str(onnx_path)]) == 0
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in ((3, 1, 32, 32), (1, 1, 44, 60)):  # height and width are dynamic
        x = torch.rand(*shape) * 2 - 1
        want = Translator.from_checkpoint(run_dir, device="cpu").model.g_t2_to_t1(x).detach().numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        np.testing.assert_allclose(got, want, atol=1e-4)
    # and through the CLI translate path
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["translate", "--model", str(run_dir), "--direction", "t2-to-t1", str(image_folders[1]), str(a), "--quiet"]) == 0
    assert main(["translate", "--model", str(run_dir), "--direction", "t2-to-t1", "--onnx", str(onnx_path), str(image_folders[1]), str(b), "--quiet"]) == 0
    from PIL import Image

    for f in a.iterdir():
        diff = np.abs(np.array(Image.open(f), np.int64) - np.array(Image.open(b / f.name), np.int64))
        assert diff.max() <= 1


def test_precision_switch(run_dir, tiny_config):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    x = np.random.default_rng(0).random((2, 37, 45)).astype(np.float32) * 2 - 1
    fp32 = Translator.from_checkpoint(run_dir, device="cpu", precision="fp32")
    bf16 = Translator.from_checkpoint(run_dir, device="cpu", precision="bf16")
    a, b = fp32.translate_stack(x, "t1_to_t2"), bf16.translate_stack(x, "t1_to_t2")
    assert bf16.precision == "bf16" and a.dtype == b.dtype == np.float32 and a.shape == x.shape
    assert not np.array_equal(a, b)  # bf16 really ran
    assert np.abs(a - b).max() < 0.1  # and stays close


def test_bf16_training_step(tiny_config, image_folders, tmp_path):
    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.training.trainer import Trainer

    cfg = tiny_config.replace(**{"train.precision": "bf16"})
    t = Trainer(cfg, load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data), tmp_path / "r")
    assert t.precision == "bf16"
    losses = t.train_step(*t.batches.next())
    assert all(np.isfinite(v) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # fp32 master weights
