"""Translation with a trained model, separate from training: images, folders and NIfTI volumes.

Every image goes through the same geometry as in training (aspect-preserving fit into image_size²),
is translated in batches, then cropped and resized back, so outputs keep the input's size; volumes
keep shape, affine and header; images keep their bit depth.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import Config
from .data.dataset import prepare_volume
from .data.preprocess import denormalize, fit_to_square, normalize, resample_to_shape, robust_range, unfit
from .io import is_nifti, list_inputs, read_image, read_nifti, write_image, write_nifti
from .io.nifti import from_canonical, slices, stack
from .io.volume import Volume
from .models import CycleGAN
from .runtime import autocast, resolve_device, resolve_precision
from .training.checkpoint import load_checkpoint, load_module

log = logging.getLogger(__name__)

DIRECTION_ALIASES = {"t1-to-t2": "t1_to_t2", "t2-to-t1": "t2_to_t1", "t1_to_t2": "t1_to_t2", "t2_to_t1": "t2_to_t1"}


def normalize_direction(direction: str) -> str:
    try:
        return DIRECTION_ALIASES[direction.lower()]
    except KeyError:
        raise ValueError(f"direction must be t1-to-t2 or t2-to-t1; got {direction!r}") from None


class Translator:
    """Applies one trained generator. Build with :meth:`from_checkpoint`."""

    def __init__(self, model: CycleGAN, config: Config, device: str = "auto", precision: str = "fp32", batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.config = config
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda" or config.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.onnx_sessions: dict[str, object] = {}

    def use_onnx(self, direction: str, onnx_path: str | Path) -> None:
        """Run ``direction`` through onnxruntime (CPU) with a model from ``mri-cyclegan export``."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.onnx_sessions[normalize_direction(direction)] = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", precision: str = "fp32", batch_size: int = 16) -> Translator:
        tensors, _, config = load_checkpoint(path)
        model = CycleGAN(config.model, config.data.train_size)
        load_module(model, tensors, "model", path)
        return cls(model, config, device, precision, batch_size)

    @property
    def image_size(self) -> int:
        return self.config.data.image_size

    @torch.inference_mode()
    def translate_batch(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """(N, 1, S, S) model space -> (N, 1, S, S) model space, fp32 on CPU."""
        direction = normalize_direction(direction)
        g = self.model.generator(direction)
        session = self.onnx_sessions.get(direction)
        out = []
        for chunk in x.split(self.batch_size):
            if session is not None:
                out.append(torch.from_numpy(session.run(None, {"image": chunk.float().contiguous().numpy()})[0]))
                continue
            chunk = chunk.to(self.device).contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.precision):
                out.append(g(chunk).float().cpu())
        return torch.cat(out, 0) if out else x.clone()

    def translate_slices(self, images: Sequence[np.ndarray], direction: str) -> list[np.ndarray]:
        """2D arrays in model space, any sizes -> translated arrays of the same sizes."""
        fitted = [fit_to_square(im, self.image_size) for im in images]
        if not fitted:
            return []
        batch = torch.from_numpy(np.stack([f for f, _ in fitted]))[:, None]
        out = self.translate_batch(batch, direction)[:, 0].numpy()
        return [unfit(o, p) for o, (_, p) in zip(out, fitted)]

    def translate_image(self, image: np.ndarray, direction: str) -> np.ndarray:
        """Raw 2D intensities -> translated intensities on the input's intensity scale."""
        lo, hi = robust_range(image, self.config.data.percentiles)
        (out,) = self.translate_slices([normalize(image, lo, hi)], direction)
        return denormalize(out, lo, hi)

    def translate_volume(self, volume: Volume, direction: str) -> Volume:
        """Slice by slice along the training axis; same shape, affine and header as the input."""
        cfg = self.config.data
        prepared = prepare_volume(volume, cfg)
        out = stack(self.translate_slices(slices(prepared.data, cfg.axis), direction), cfg.axis)
        if out.shape != prepared.canonical_shape:
            out = resample_to_shape(out, prepared.canonical_shape)
        data = from_canonical(denormalize(out, prepared.lo, prepared.hi), volume.affine)
        return Volume(data=data, affine=volume.affine, header=volume.header, path=None)


def _output_path(src: Path, root: Path, out: Path, single: bool) -> Path:
    if single and (out.suffix or str(out).endswith(".nii.gz")):
        return out
    base = root if root.is_dir() else root.parent
    return out / src.relative_to(base)


def translate_path(translator: Translator, input_path: str | Path, output_path: str | Path, direction: str, progress: bool = True) -> list[Path]:
    """Translate an image, a NIfTI volume, or a folder of them; returns the written paths."""
    from tqdm.auto import tqdm

    src_root, out_root = Path(input_path), Path(output_path)
    files = list_inputs(src_root, "input")
    single = src_root.is_file()
    written = []
    for f in tqdm(files, disable=not progress or len(files) < 2, unit="file"):
        dst = _output_path(f, src_root, out_root, single)
        if is_nifti(f):
            vol = translator.translate_volume(read_nifti(f), direction)
            if not str(dst).endswith((".nii", ".nii.gz")):
                dst = dst.with_suffix(".nii.gz")
            write_nifti(dst, vol.data, vol.affine, vol.header)
        else:
            arr, info = read_image(f)
            write_image(dst, translator.translate_image(arr, direction), info.dtype)
        written.append(dst)
        log.info("wrote %s", dst)
    return written
