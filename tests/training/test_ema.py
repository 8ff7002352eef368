import pytest
import torch
from torch import nn

from mri_cyclegan.checkpoints import MODEL, load_checkpoint, load_model
from mri_cyclegan.data.dataset import load_domain
from mri_cyclegan.training.ema import RAW, WeightAverage, ema_decay_at
from mri_cyclegan.training.trainer import Trainer


def test_average_follows_the_weights_with_warmed_up_decay():
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage({"g": net}, decay=0.5)
    expected = 0.0
    for n, w in enumerate([1.0, 2.0, 4.0], start=1):
        with torch.no_grad():
            net.weight.fill_(w)
        avg.update()
        d = ema_decay_at(0.5, n)
        expected = d * expected + (1 - d) * w
        assert avg.average["g.weight"].item() == pytest.approx(expected)
    assert ema_decay_at(0.5, 1) == pytest.approx(2 / 11) and ema_decay_at(0.5, 100) == 0.5
    with pytest.raises(RuntimeError), avg.applied():
        assert net.weight.item() == pytest.approx(expected)
        raise RuntimeError
    assert net.weight.item() == 4.0  # the raw weights are back, even after an error


def test_checkpoints_and_the_trained_model_hold_the_average(tiny_config, image_folders, tmp_path):
    cfg = tiny_config.replace(**{"train.ema_decay": 0.9})
    t = Trainer(cfg, load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data), tmp_path / "r")
    t.fit(progress=False)
    tensors, _, _ = load_checkpoint(tmp_path / "r")
    name = next(k for k in t.average.average if k.startswith("g_t2_to_t1"))
    saved, raw = tensors[f"{MODEL}/{name}"], tensors[f"{RAW}/{name}"]
    torch.testing.assert_close(saved, t.average.average[name].cpu(), rtol=0, atol=0)
    assert not torch.equal(saved, raw)  # the optimizer's last iterate is kept beside it, for --resume
    loaded, _ = load_model(tmp_path / "r")  # what translate uses
    for (k, a), b in zip(t.model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=0, msg=k)


def test_paired_validation_scores_the_averaged_weights(tiny_config, image_folders, tmp_path):
    from mri_cyclegan.validation import EpochValidation

    cfg = tiny_config.replace(**{"train.ema_decay": 0.9})
    t = Trainer(cfg, load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data), tmp_path / "r")
    for _ in range(3):
        t.train_step(*t.batches.next())
    name = next(k for k in t.average.average if k.startswith("g_t2_to_t1"))
    seen = []

    class Recording:
        paired, best_key, higher_is_better, examples = True, "mean_psnr", True, []

        def score(self, translator):
            seen.append(dict(translator.model.named_parameters())[name].detach().clone())
            return {f"{d}_{k}": 20.0 for d in ("t1_to_t2", "t2_to_t1") for k in ("psnr", "ssim", "mae")} | {"mean_psnr": 20.0}

    EpochValidation(Recording(), tmp_path / "r")(t)
    torch.testing.assert_close(seen[0], t.average.average[name], rtol=0, atol=0)  # scored: what the checkpoint holds
    assert not torch.equal(dict(t.model.named_parameters())[name], seen[0])  # and training goes on with the raw weights
