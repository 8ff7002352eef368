"""Translation with a trained model, separate from training: images, volumes, DICOM series and folders of them.

Every file goes through the model's :class:`~mri_cyclegan.data.preprocess.Preprocessor` (the same one
training used): forward into model space at the training spacing, then the generator runs on each whole
slice at that resolution (padded to the generator's multiple and cropped back; overlapping tiles for
slices too large for memory), and the preprocessor's inverse brings the result back to the file's grid,
voxel order and intensity scale. Volumes keep shape, affine and header; images keep size and bit depth.

This module is the translator alone (arrays and Volumes in, arrays out). Which files go where, checking that
nothing is overwritten, and the threaded read/translate/write pipeline are :mod:`mri_cyclegan.translate_files`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_model
from .config import Config
from .directions import Direction
from .data.patches import apply_whole
from .data.preprocess import Preprocessor, context_windows
from .errors import InputError
from .io.volume import Volume
from .models import CycleGAN
from .runtime import autocast, eval_mode, resolve_device, resolve_precision
from .uncertainty import DEFAULT_MEMBERS, Member, member_weights, members, spread

log = logging.getLogger(__name__)


def normalize_direction(direction: str | Direction) -> Direction:
    """User text (``t1-to-t2``, ``t1_to_t2``, ...) -> the Direction; a bad value is an InputError (exit 2)."""
    try:
        return Direction.parse(direction)
    except ValueError as e:
        raise InputError(str(e)) from None


def baseline_translation(volume: Volume, lut: np.ndarray, preprocessor: Preprocessor, unmix_outline: bool = True) -> np.ndarray:
    """Inverse histogram matching through the same preprocessing as the model: forward into model space, the
    lookup table on every voxel, inverse back to the file's grid and intensity scale. With ``unmix_outline`` (what a
    model's prior does unless its config says ``outline: table``) the outline is unmixed like the model's prior
    (:func:`~mri_cyclegan.models.networks.unmix_outline`): the baseline is the untrained model. A model's own table:
    :meth:`Translator.table_translation`."""
    from .models.networks import HistogramPrior

    stack, geom = preprocessor.forward(volume)
    prior = HistogramPrior(lut.size, unmix_outline=unmix_outline)
    prior.lut.copy_(torch.as_tensor(lut, dtype=torch.float32))
    t = torch.as_tensor(stack, dtype=torch.float32)[:, None]  # (S, 1, H, W): each slice a 2D image, as the model sees it
    with torch.no_grad():
        out = torch.cat([prior(chunk) for chunk in t.split(32)])[:, 0].numpy()
    return preprocessor.inverse(out, geom)


class Translator:
    """Applies one trained generator at the training resolution. Build with :meth:`from_checkpoint`."""

    def __init__(self, model: CycleGAN, config: Config, device: str = "auto", precision: str = "fp32", batch_size: int = 16,
                 max_pixels: int = 1024 * 1024) -> None:
        if batch_size < 1:
            raise InputError(f"--batch-size must be >= 1; got {batch_size}")
        self.config = config
        self.preprocessor = Preprocessor(config.data)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        self.max_pixels = max_pixels  # larger slices are translated in overlapping tiles
        self.average_context = True  # 2.5D: mean of the K predictions of each slice (measured better than the centre alone)
        self.model = model.to(self.device)  # run in eval mode while translating; its own mode is left as it is
        self.onnx_sessions: dict[str, object] = {}

    def use_onnx(self, direction: str, onnx_path: str | Path) -> None:
        """Run ``direction`` through onnxruntime (CPU) with a model from ``mri-cyclegan export``."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("--onnx needs onnxruntime: pip install 'mri-cyclegan[onnx]'") from None
        path = Path(onnx_path)
        if not path.is_file():
            raise InputError(f"--onnx {path}: no such file; export one with 'mri-cyclegan export'")
        ort.disable_telemetry_events()  # nothing written outside the paths the user named (~/.cache/Microsoft)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 -- onnxruntime raises its own exception types for a bad model file
            first = " ".join(str(e).split())[:300]
            raise InputError(f"--onnx {path} cannot be loaded ({first}); export it again with 'mri-cyclegan export'") from None
        inputs = [i.name for i in session.get_inputs()]
        if inputs != ["image"]:
            raise InputError(f"--onnx {path} takes inputs {inputs}, not the 'image' of an mri-cyclegan export; export it again")
        self.onnx_sessions[normalize_direction(direction)] = session

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", precision: str = "fp32", batch_size: int = 16) -> Translator:
        model, config = load_model(path)
        return cls(model, config, device, precision, batch_size)

    @property
    def context(self) -> int:
        return self.config.data.context_slices

    def _forward(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """(N, K, H, W) with H, W multiples of the generator's multiple -> (N, K, H, W) fp32 on CPU."""
        session = self.onnx_sessions.get(direction)
        if session is not None:
            return torch.from_numpy(session.run(None, {"image": x.float().cpu().contiguous().numpy()})[0])
        with autocast(self.device, self.precision):
            return self.model.generator(direction)(x.to(self.device)).float().cpu()

    def _whole(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """(n, K, h, w) windows of any size -> predictions (padded to the generator's multiple, or tiled)."""
        return apply_whole(lambda t: self._forward(t, direction), x, self.model.size_multiple, self.max_pixels)

    def _predict(self, windows: torch.Tensor, direction: str, which: Sequence[Member] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(N, K, h, w) windows of one slice size -> (N, K, h, w) predictions and the uncertainty members' predictions
        (:mod:`mri_cyclegan.uncertainty`), in chunks of ``batch_size``."""
        preds: list[torch.Tensor] = []
        others: list[list[torch.Tensor]] = []
        g = self.model.generator(direction)
        prior = None
        if g.prior is not None:
            def prior(t: torch.Tensor) -> torch.Tensor:
                return g.calibration(g.prior(t.to(self.device))).float().cpu()
        reverse = Direction(direction).reverse
        for chunk in windows.split(self.batch_size):
            preds.append(self._whole(chunk, direction))
            others.append(members(chunk, lambda t: self._whole(t, direction), which, prior, lambda t: self._whole(t, reverse), preds[-1]))
        return torch.cat(preds, 0), [torch.cat(m, 0) for m in zip(*others)]

    def _fuse(self, preds: torch.Tensor) -> np.ndarray:
        """(D, K, h, w) predictions of one stack's windows -> (D, h, w). With K > 1 context slices, slice z is the
        mean of the K predictions of slice z made by the windows centred on z - r .. z + r (inside the stack), or
        with ``average_context = False`` the centre channel of its own window."""
        r = self.context // 2
        if not (self.average_context and r):
            return preds[:, r].numpy()
        d = preds.shape[0]
        acc, count = torch.zeros_like(preds[:, 0]), torch.zeros(d)
        for j in range(-r, r + 1):  # window centred on z + j holds slice z in channel r - j
            lo, hi = max(0, -j), min(d, d - j)
            acc[lo:hi] += preds[lo + j : hi + j, r - j]
            count[lo:hi] += 1
        return (acc / count[:, None, None]).numpy()

    def _windows(self, stack: np.ndarray) -> torch.Tensor:
        return context_windows(torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)), self.context)

    @torch.inference_mode()
    def translate_stack(self, stack: np.ndarray, direction: str) -> np.ndarray:
        """(D, h, w) model-space slices of one file -> (D, h, w) translated slices."""
        return self.translate_stacks([stack], direction)[0]

    def translate_stacks(self, stacks: list[np.ndarray], direction: str) -> list[np.ndarray]:
        """Several files' model-space stacks at once: windows of the same slice size are batched together across
        files (a folder of same-size images, or volumes sharing a grid, fills each batch), so results equal
        :meth:`translate_stack` file by file (instance norm is per sample) while the device sees full batches."""
        return [p for p, _ in self.translate_stacks_with_members(stacks, direction, ())]

    @torch.inference_mode()
    def translate_stacks_with_members(self, stacks: list[np.ndarray], direction: str,
                                      which: Sequence[Member]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """Like :meth:`translate_stacks`, with each stack's uncertainty-member predictions (model space, fused like
        the translation): [(translation (D, h, w), [member (D, h, w), ...]), ...]."""
        direction = normalize_direction(direction)
        with eval_mode(self.model):
            return self._translate_stacks(stacks, direction, which)

    def _translate_stacks(self, stacks: list[np.ndarray], direction: str, which: Sequence[Member]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        windows = [self._windows(s) for s in stacks]
        preds: list[tuple[torch.Tensor, list[torch.Tensor]] | None] = [None] * len(stacks)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, w in enumerate(windows):
            by_shape.setdefault(tuple(w.shape[-2:]), []).append(i)
        for ids in by_shape.values():
            out, others = self._predict(torch.cat([windows[i] for i in ids], 0), direction, which)
            sizes = [windows[i].shape[0] for i in ids]
            parts = [o.split(sizes, 0) for o in others]
            for j, (i, part) in enumerate(zip(ids, out.split(sizes, 0))):
                preds[i] = (part, [p[j] for p in parts])
        return [(self._fuse(p), [self._fuse(m) for m in ms]) for p, ms in preds]

    def translate_many(self, volumes: list[Volume], direction: str) -> list[np.ndarray]:
        """Like :meth:`translate` for several volumes/images, batched across them (:meth:`translate_stacks`)."""
        return [data for data, _ in self.translate_many_with_uncertainty(volumes, direction, ())]

    def translate_many_with_uncertainty(self, volumes: list[Volume], direction: str,
                                        which: Sequence[Member] = DEFAULT_MEMBERS) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """[(translation, uncertainty or None when ``which`` is empty), ...] on each file's grid: the translation in the
        file's intensity scale, the uncertainty (:func:`mri_cyclegan.uncertainty.spread`) in the same units."""
        which = self.usable_members(direction, which)
        weights = member_weights(which)
        forwards = [self.preprocessor.forward(v) for v in volumes]
        outs = self.translate_stacks_with_members([stack for stack, _ in forwards], direction, which)
        results = []
        for (pred, others), (_, geom) in zip(outs, forwards):
            unc = None
            if others:
                u = spread(torch.from_numpy(pred), [torch.from_numpy(o) for o in others], weights).numpy()
                unc = self.preprocessor.inverse_magnitude(u, geom)
            results.append((self.preprocessor.inverse(pred, geom), unc))
        return results

    def usable_members(self, direction: str, which: Sequence[Member]) -> list[Member]:
        """``which`` without the prior member when the model has no lookup-table prior (trained with --prior none)."""
        if Member.PRIOR in which and self.model.generator(normalize_direction(direction)).prior is None:
            log.info("uncertainty: this model has no lookup-table prior; the map leaves the prior member out")
            return [m for m in which if m is not Member.PRIOR]
        return list(which)

    def table_translation(self, volume: Volume, direction: str) -> np.ndarray:
        """``volume`` translated by this model's lookup table alone (its prior: the untrained model), through the same
        preprocessing: the baseline a trained model is measured against."""
        prior = self.model.generator(normalize_direction(direction)).prior
        if prior is None:
            raise InputError("this model has no lookup table (it was trained with --prior none)")
        return baseline_translation(volume, prior.lut.detach().cpu().numpy(), self.preprocessor, self.config.model.unmix_outline)

    def translate(self, volume: Volume, direction: str) -> np.ndarray:
        """A volume or 2D image (raw intensities) -> translated data on its own grid and intensity scale."""
        return self.translate_many([volume], direction)[0]

    def translate_with_uncertainty(self, volume: Volume, direction: str,
                                   which: Sequence[Member] = DEFAULT_MEMBERS) -> tuple[np.ndarray, np.ndarray]:
        """(translation, per-voxel uncertainty), both on the input's grid, in the translation's intensity units. The
        translation equals :meth:`translate`'s."""
        data, unc = self.translate_many_with_uncertainty([volume], direction, which)[0]
        if unc is None:
            raise ValueError(f"no uncertainty member usable with this model among {[m.value for m in which]}")
        return data, unc

    def translate_image(self, image: np.ndarray, direction: str) -> np.ndarray:
        """Raw 2D intensities -> translated intensities on the input's intensity scale."""
        return self.translate(Volume(image), direction)

    def translate_volume(self, volume: Volume, direction: str) -> Volume:
        """Slice by slice along the training axis; same shape, affine and header as the input."""
        return Volume(data=self.translate(volume, direction), affine=volume.affine, header=volume.header, path=None)
