import pytest

from mri_cyclegan.config import Config, DataConfig, ModelConfig, TrainConfig, load_config
from mri_cyclegan.errors import InputError


def test_defaults_keep_reference_algorithm():
    c = Config()
    assert (c.train.gan_loss, c.train.lambda_cycle, c.train.pool_size) == ("lsgan", 10.0, 50)
    assert c.train.lambda_identity == 0.0  # measured: the reference's 0.5 is worse with the prior at equal time
    assert (c.train.epochs, c.train.decay_epochs, c.train.constant_epochs) == (20, 10, 10)  # --epochs is the total, second half decays
    assert (c.train.lr, c.train.beta1) == (2e-4, 0.5)
    assert (c.data.image_size, c.data.patch) == (0, 96)  # native resolution, 96² patches
    ref = Config.reference()
    assert (ref.data.image_size, ref.data.patch, ref.model.ngf, ref.model.n_blocks, ref.train.batch_size) == (256, 256, 64, 9, 1)
    assert ref.train.lambda_identity == 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda: DataConfig(image_size=8),
        lambda: DataConfig(patch_size=200, image_size=96),
        lambda: DataConfig(axis="oblique"),
        lambda: ModelConfig(generator="vit"),
        lambda: ModelConfig(ngf=0),
        lambda: TrainConfig(gan_loss="wgan"),
        lambda: TrainConfig(lambda_identity=-1),
        lambda: TrainConfig(epochs=0, epochs_decay=0),
        lambda: Config(DataConfig(image_size=90)),  # not a multiple of 4
        lambda: Config(DataConfig(image_size=96), ModelConfig(generator="unet", unet_downs=6)),  # 96 % 64
    ],
)
def test_invalid_values_raise(make):
    with pytest.raises(ValueError):
        make()


def test_round_trip_and_overrides():
    c = Config().replace(**{"train.epochs": 3, "model.generator": "unet"})
    assert Config.from_dict(c.to_dict()) == c
    assert c.train.epochs == 3 and c.model.generator == "unet"
    with pytest.raises(ValueError):
        c.replace(**{"train.nope": 1})


def test_unet_depth_auto():
    assert ModelConfig(generator="unet").resolved_unet_downs(256) == 8
    assert ModelConfig(generator="unet").resolved_unet_downs(96) == 5


def test_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  image_size: 64\ntrain:\n  epochs: 2\n")
    c = load_config(p)
    assert c.data.image_size == 64 and c.train.epochs == 2 and c.model == ModelConfig()
    p.write_text("train:\n  bogus: 1\n")
    with pytest.raises(InputError, match="bogus"):
        load_config(p)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_shipped_reference_config_is_the_reference():
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / "reference.yaml"
    assert load_config(path) == Config.reference()


def test_channels_last_is_decided_per_device():
    """'auto' (the default) is NHWC on CUDA only (measured slower on CPU); configs saved with true/false keep them."""
    import torch

    from mri_cyclegan.runtime import resolve_channels_last

    assert Config().train.channels_last == "auto"
    assert resolve_channels_last("auto", torch.device("cpu")) is False
    assert resolve_channels_last("auto", torch.device("cuda", 0)) is True
    assert resolve_channels_last(True, torch.device("cpu")) is True
    assert Config.from_dict(Config().replace(**{"train.channels_last": True}).to_dict()).train.channels_last is True
    with pytest.raises(InputError):
        Config().replace(**{"train.channels_last": "yes"})
