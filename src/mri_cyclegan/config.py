"""Run configuration: frozen, validated dataclasses, saved into every run folder and checkpoint.

Defaults keep the reference CycleGAN algorithm (LSGAN, lambda_cycle 10, identity 0.5, pool 50,
Adam 2e-4 / beta1 0.5, constant then linear LR decay) with a CPU-sized network, trained on native-
resolution patches. The reference setting (every image squeezed into 256², ResNet-9, ngf 64) is
``Config.reference()`` / ``configs/reference.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import InputError

GeneratorName = Literal["resnet", "unet"]
GanLoss = Literal["lsgan", "bce"]
Prior = Literal["none", "inverse_histogram"]
Axis = Literal["axial", "coronal", "sagittal"]
Precision = Literal["auto", "fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]
IntensityFloor = Literal["zero", "percentile"]
Upsample = Literal["resize", "transpose"]
Outline = Literal["unmix", "table"]

# Keys added after checkpoints were first written, with the value that reproduces an older checkpoint's behaviour:
# a config read from a checkpoint (or a resumed run) that lacks one gets this, not today's default.
LEGACY_VALUES = {"model": {"upsample": "transpose", "outline": "table", "residual_bound": 0.0}, "train": {"lambda_anchor": 0.0, "lambda_structure": 0.0, "anchor_rim": 0.0,
                                                                                           "anchor_rim_border": False, "ema_decay": 0.0}}


def _check_choice(name: str, value: Any, literal: Any) -> None:
    choices = get_args(literal)
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if allow_zero and value < 0 or not allow_zero and value <= 0:
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}")


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise InputError(f"{name} must be in {lo:g}..{hi:g}; got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, h) for h in get_args(hint))
    if origin is tuple:
        args = get_args(hint)
        return isinstance(value, tuple) and len(value) == len(args) and all(_matches(v, h) for v, h in zip(value, args))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, hint)


def _check_types(obj: Any) -> None:
    """Every field holds a value of its annotated type (an int is not 32.0, a flag is not "yes")."""
    section = type(obj).__name__.removesuffix("Config").lower()
    for name, hint in get_type_hints(type(obj)).items():
        value = getattr(obj, name)
        if not _matches(value, hint):
            want = " or ".join(map(str, get_args(hint))) if get_origin(hint) is Literal else getattr(hint, "__name__", str(hint))
            raise InputError(f"{section}.{name} must be {want}; got {value!r} ({type(value).__name__})")


DEFAULT_PATCH = 96  # a demo iteration at 96² patches costs what one at the old 96² whole images did


@dataclass(frozen=True)
class DataConfig:
    image_size: int = 0  # 0 = native resolution (default); N > 0 = fit every slice into N x N (faster, less detail)
    patch_size: int | None = None  # P x P training patches around foreground; 0 = whole slices; None = auto (96, or image_size)
    axis: Axis = "axial"  # slicing axis for volumes
    spacing: float = 0.0  # in-plane target spacing (mm) for volumes; 0 = the training data's median (set at train time)
    image_scale: float = 1.0  # 2D images are resampled by this factor (e.g. 0.5 for very large images)
    context_slices: int = 1  # 2.5D: K neighbouring slices as input channels (odd; 1 = 2D)
    n4: bool = False  # N4 bias-field correction of volumes (needs SimpleITK)
    percentiles: tuple[float, float] = (0.5, 99.5)  # robust intensity window mapped to [-1, 1]
    intensity_floor: IntensityFloor = "zero"  # window bottom: 0 for non-negative data (no signal), or the low percentile
    min_foreground: float = 0.05  # volume slices with less foreground than this are skipped
    flip: bool = True  # random left-right flips
    rotate_deg: float = 5.0  # random affine: rotation range (degrees)
    scale: float = 0.05  # random affine: scale range (fraction)
    translate: float = 0.03  # random affine: translation range (fraction of size)

    def __post_init__(self) -> None:
        _check_types(self)
        if self.image_size and not 16 <= self.image_size <= 4096:
            raise InputError(f"image_size must be 0 (native resolution) or in 16..4096; got {self.image_size}")
        if self.patch_size is not None and self.patch_size and not 16 <= self.patch_size <= 4096:
            raise InputError(f"patch_size must be 0 (whole slices) or in 16..4096; got {self.patch_size}")
        if self.patch_size and self.image_size and self.patch_size > self.image_size:
            raise InputError(f"patch_size {self.patch_size} is larger than image_size {self.image_size}")
        _check_choice("axis", self.axis, Axis)
        if self.spacing and not 0.05 <= self.spacing <= 20:  # a typo (or an edited checkpoint) would allocate hundreds of GB
            raise InputError(f"spacing must be 0 (the training data's median) or in 0.05..20 mm; got {self.spacing!r}")
        if not 0.05 <= self.image_scale <= 4:
            raise InputError(f"image_scale must be in [0.05, 4]; got {self.image_scale}")
        if not (1 <= self.context_slices <= 15 and self.context_slices % 2 == 1):
            raise InputError(f"context_slices must be odd, 1..15; got {self.context_slices}")
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise InputError(f"percentiles must satisfy 0 <= low < high <= 100; got {self.percentiles}")
        if not 0 <= self.min_foreground < 1:
            raise InputError(f"min_foreground must be in [0, 1); got {self.min_foreground}")
        for name in ("rotate_deg", "scale", "translate"):
            _check_positive(name, getattr(self, name), allow_zero=True)

    @property
    def patch(self) -> int:
        """The patch side in use: ``patch_size``, or by default 96 at native resolution and the whole image_size²."""
        if self.patch_size is None:
            return self.image_size or DEFAULT_PATCH
        return self.patch_size

    @property
    def train_size(self) -> int:
        """Side of the training tensors; 0 = whole native slices (padded to the largest in a batch)."""
        return self.patch or self.image_size


@dataclass(frozen=True)
class ModelConfig:
    generator: GeneratorName = "resnet"
    ngf: int = 32  # generator width (reference: 64)
    n_blocks: int = 6  # ResNet blocks (reference: 9)
    unet_downs: int = 0  # U-Net depth; 0 = down to 1x1 at the training size (8 at 256)
    ndf: int = 64  # discriminator width
    n_layers_d: int = 3  # PatchGAN depth; 3 gives the 70x70 receptive field
    prior: Prior = "inverse_histogram"  # generator output = prior(x) + residual; "none" = plain CycleGAN
    upsample: Upsample = "resize"  # ResNet generator: nearest resize + 3x3 conv (no checkerboard); "transpose" = reference
    outline: Outline = "unmix"  # prior at the outline: unmix partial volume with the background; "table" = pointwise
    # a translation stays within this of the lookup table's, voxel by voxel (model units: the window is 2 wide, so 0.1 is
    # 0.05 on the [0, 1] scale, the safety net's limits); 0 = unbounded. Applied to what translate, evaluate, samples and
    # the safety net see, not in training (benchmarks/residual_bound.py)
    residual_bound: float = 0.1

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choice("generator", self.generator, GeneratorName)
        _check_choice("prior", self.prior, Prior)
        _check_choice("upsample", self.upsample, Upsample)
        _check_choice("outline", self.outline, Outline)
        _check_range("residual_bound", self.residual_bound, 0, 2)
        # bounds keep a typo (or a hostile checkpoint) from allocating hundreds of GB or running for days
        _check_range("ngf", self.ngf, 1, 1024)
        _check_range("ndf", self.ndf, 1, 1024)
        _check_range("n_layers_d", self.n_layers_d, 1, 8)
        _check_range("n_blocks", self.n_blocks, 0, 64)
        if not 0 <= self.unet_downs <= 10:
            raise InputError(f"unet_downs must be in 0..10 (0 = automatic); got {self.unet_downs}")

    @property
    def unmix_outline(self) -> bool:
        """Whether the prior (and the generator's output) unmix the outline (``models.networks.unmix_outline``)."""
        return self.outline == "unmix"

    def size_multiple(self, train_size: int) -> int:
        """Input sides must be a multiple of this for the generator."""
        if self.generator == "resnet":
            return 4
        return 2 ** self.resolved_unet_downs(train_size)

    def resolved_unet_downs(self, train_size: int) -> int:
        if self.unet_downs:
            return self.unet_downs
        if not train_size:  # whole native slices: a fixed depth, slices are padded to 2**5
            return 5
        downs = 0
        while train_size % (2 ** (downs + 1)) == 0 and downs < 8:
            downs += 1
        return max(downs, 1)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 4
    epochs: int = 20  # total epochs (as the seeds' users mean it)
    epochs_decay: int | None = None  # the last N of them decay the LR linearly to zero; None = the second half (as the reference's 100 + 100)
    iters_per_epoch: int = 0  # 0 = max(#T1, #T2) / batch_size, as the reference
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gan_loss: GanLoss = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.0  # relative to lambda_cycle; the reference's 0.5 measured worse with the prior at equal time (README)
    lambda_anchor: float = 1.0  # low-pass of G(x) held to the lookup table's (prior's) translation; 0 = off (needs the prior); 10 pins the model to the table (benchmarks/faithfulness.py)
    anchor_sigma: float = 2.0  # pixels: the residual may add detail finer than this, not move tissue intensities
    anchor_rim: float = 30.0  # anchor the rim inside the head outline pixel by pixel, this weight (0 = off; benchmarks/faithfulness.py)
    anchor_rim_width: int = 3  # pixels: how deep that rim reaches inside the outline
    anchor_rim_border: bool = True  # the rim also runs along each training patch's edge (where the generator has the least context)
    lambda_structure: float = 1.0  # edges of G(x) aligned with those of x (normalised gradient fields); 0 = off
    lambda_paired: float = 10.0  # with co-registered pairs (train --paired-t1/--paired-t2): L1 of each translation against its pair's truth
    paired_batch: int = 1  # with pairs: patches of co-registered pairs added to each batch (at the same place in both contrasts)
    lambda_nce: float = 0.0  # PatchNCE (CUT): each place of a translation recognisable among the input's places in the generator's encoder; 0 = off (benchmarks/faithfulness.py)
    balance_d: bool = False  # the adversarial losses weigh every tissue class (no signal, then the set's 3-class mixture) equally (benchmarks/faithfulness.py)
    ema_decay: float = 0.0  # > 0: samples, the safety net and checkpoints use this running average of the generators' weights (0 = the last iterate)
    pool_size: int = 50
    save_every: int = 5  # also keep a checkpoint every N epochs (0 = only 'last')
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"
    channels_last: bool | Literal["auto"] = "auto"  # NHWC tensors; 'auto' = on CUDA only (slower with instance norm on CPU, README Speed)
    n_samples: int = 4  # fixed validation images in the per-epoch sample grid
    minutes: float = 0.0  # > 0: train for this wall-clock budget; the LR schedule follows elapsed time
    calibrate: bool = False  # fit an output intensity calibration after each epoch (assumes matched tissue proportions when they cannot be estimated)

    def __post_init__(self) -> None:
        _check_types(self)
        _check_range("batch_size", self.batch_size, 1, 4096)
        _check_range("epochs", self.epochs, 1, 100_000)
        if self.epochs_decay is not None:
            _check_range("epochs_decay", self.epochs_decay, 0, self.epochs)
        _check_range("iters_per_epoch", self.iters_per_epoch, 0, 10_000_000)
        _check_positive("lr", self.lr)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise InputError("beta1 and beta2 must be in [0, 1)")
        _check_choice("gan_loss", self.gan_loss, GanLoss)
        _check_positive("lambda_cycle", self.lambda_cycle, allow_zero=True)
        _check_positive("lambda_identity", self.lambda_identity, allow_zero=True)
        _check_range("lambda_anchor", self.lambda_anchor, 0, 1e4)
        _check_range("anchor_sigma", self.anchor_sigma, 0.5, 32)
        _check_range("anchor_rim", self.anchor_rim, 0, 1e4)
        _check_range("anchor_rim_width", self.anchor_rim_width, 1, 256)
        _check_range("lambda_structure", self.lambda_structure, 0, 1e4)
        _check_range("lambda_paired", self.lambda_paired, 0, 1e4)
        _check_range("paired_batch", self.paired_batch, 1, 4096)
        _check_range("lambda_nce", self.lambda_nce, 0, 1e4)
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"ema_decay must be in [0, 1) (0 = off; 0.99 averages about the last 100 iterations); got {self.ema_decay!r}")
        _check_range("pool_size", self.pool_size, 0, 100_000)
        _check_positive("save_every", self.save_every, allow_zero=True)
        _check_choice("device", self.device, Device)
        _check_choice("precision", self.precision, Precision)
        _check_range("n_samples", self.n_samples, 0, 64)
        _check_positive("minutes", self.minutes, allow_zero=True)

    @property
    def total_epochs(self) -> int:
        return self.epochs

    @property
    def decay_epochs(self) -> int:
        """Epochs of linear LR decay at the end (the second half unless ``epochs_decay`` says otherwise)."""
        return self.epochs // 2 if self.epochs_decay is None else self.epochs_decay

    @property
    def constant_epochs(self) -> int:
        return self.epochs - self.decay_epochs


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        size, mult = self.data.train_size, self.model.size_multiple(self.data.train_size)
        if size and size % mult:
            flag = "--patch-size" if self.data.patch else "--image-size"
            raise InputError(
                f"training size {size} cannot be handled by the {self.model.generator} generator: "
                f"it must be a multiple of {mult}; use e.g. {flag} {max(mult, size - size % mult)}"
            )
        if self.train.lambda_nce > 0 and self.model.generator != "resnet":
            raise InputError("lambda_nce (PatchNCE) compares the ResNet generator's encoder layers; use --generator resnet or lambda_nce 0")
        if self.data.image_size and self.data.image_size % mult:
            hint = (f"use --image-size {self.data.image_size + mult - self.data.image_size % mult}" if self.model.generator == "resnet"
                    else f"its depth ({self.model.resolved_unet_downs(size)} downsamplings) follows the training size {size}; "
                         f"set --unet-downs, or a size that is a multiple of {mult}")
            raise InputError(f"image_size {self.data.image_size} must be a multiple of {mult} for the {self.model.generator} generator; {hint}")

    @classmethod
    def reference(cls) -> Config:
        """The reference CycleGAN setting: 256², ResNet-9, ngf 64, batch 1, 100 + 100 epochs, no prior."""
        return cls(
            DataConfig(image_size=256),
            ModelConfig(ngf=64, n_blocks=9, prior="none", upsample="transpose"),
            TrainConfig(batch_size=1, epochs=200, epochs_decay=100, lambda_identity=0.5, lambda_anchor=0.0, lambda_structure=0.0,
                        anchor_rim=0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_saved(cls, d: dict[str, Any]) -> Config:
        """A config written by an earlier run (checkpoint, config.json): keys it lacks take their
        :data:`LEGACY_VALUES` (what that run did), not today's defaults."""
        if isinstance(d, dict):
            d = {**d}
            for section, legacy in LEGACY_VALUES.items():
                if isinstance(d.get(section), dict):
                    d[section] = {**legacy, **d[section]}
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        if not isinstance(d, dict):
            raise InputError("a config must be a mapping with sections data/model/train")
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = set(d) - set(sections)
        if unknown:
            raise InputError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        parts = {}
        for name, klass in sections.items():
            values = d.get(name) or {}
            if not isinstance(values, dict):
                raise InputError(f"config section [{name}] must be a mapping of keys to values")
            values = dict(values)
            known = {f.name for f in fields(klass)}
            bad = set(values) - known
            if bad:
                raise InputError(f"unknown key(s) in [{name}]: {', '.join(sorted(bad))}")
            if name == "data" and "percentiles" in values and "intensity_floor" not in values:
                values["intensity_floor"] = "percentile"  # configs written before the key existed keep their windowing
            if isinstance(values.get("percentiles"), list):
                values["percentiles"] = tuple(values["percentiles"])
            parts[name] = klass(**values)
        return cls(**parts)

    def replace(self, **overrides: Any) -> Config:
        """Return a copy with ``section.key`` overrides, e.g. ``replace(**{"train.epochs": 3})``."""
        d = self.to_dict()
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if section not in d or name not in d[section]:
                raise InputError(f"unknown config key {key!r}")
            d[section][name] = value
        return Config.from_dict(d)


def load_config(path: str | Path | None) -> Config:
    """Read a YAML (or JSON) config file; missing keys take the defaults."""
    if path is None:
        return Config()
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file not found: {p}; pass an existing YAML file to --config")
    try:
        d = yaml.safe_load(p.read_text()) or {}
        return Config.from_dict(d)
    except (yaml.YAMLError, UnicodeDecodeError, InputError) as e:
        raise InputError(f"invalid config file {p}: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise InputError(f"invalid config file {p}: nested too deeply; a config has three flat sections (data, model, train)") from None
