"""Translation with a trained model, separate from training: images, volumes, DICOM series and folders of them.

Every file goes through the model's :class:`~mri_cyclegan.data.preprocess.Preprocessor` (the same one
training used): forward into model space at the training spacing, then the generator runs on each whole
slice at that resolution (padded to the generator's multiple and cropped back; overlapping tiles for
slices too large for memory), and the preprocessor's inverse brings the result back to the file's grid,
voxel order and intensity scale. Volumes keep shape, affine and header; images keep size and bit depth.
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
from .io import is_dicom, is_volume, list_inputs, read_any, read_image, write_image, write_volume
from .io.volume import Volume
from .models import CycleGAN
from .runtime import autocast, eval_mode, resolve_device, resolve_precision
from .uncertainty import DEFAULT_MEMBERS, Member, member_weights, members, spread, uncertainty_path

log = logging.getLogger(__name__)


def normalize_direction(direction: str | Direction) -> Direction:
    """User text (``t1-to-t2``, ``t1_to_t2``, ...) -> the Direction; a bad value is an InputError (exit 2)."""
    try:
        return Direction.parse(direction)
    except ValueError as e:
        raise InputError(str(e)) from None


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


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _output_for(f: Path, src_root: Path, out_root: Path, single: bool, named: bool, dicom_out: bool) -> Path:
    """Where the translation of input ``f`` goes: a named single output as given; otherwise the same relative
    path under ``out_root``, a DICOM series becoming '<series>.nii.gz' (or a '<series>_synthetic' folder of DICOM
    files with ``dicom_out``)."""
    if named:
        return out_root
    rel = Path(f.name) if single else f.relative_to(src_root)
    if is_dicom(f):
        from .io.dicom import series_name

        name = series_name(f)
        return out_root / rel.parent / (f"{name}_synthetic" if dicom_out else f"{name}.nii.gz")
    return out_root / rel


def plan_outputs(input_path: str | Path, output_path: str | Path, overwrite: bool = False, dicom_out: bool = False,
                 uncertainty: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs for ``translate``, checked before any work is done.

    A single file goes to ``output_path`` (a file name, or into it as a folder); a folder's files go to the
    same relative paths under ``output_path`` (a DICOM series to one NIfTI volume, or with ``dicom_out`` to a
    new DICOM series folder). Raises InputError when an output would replace an input, when a volume is named
    as a 2D image (or the reverse), or when outputs exist and ``overwrite`` is False. Files under
    ``output_path`` are never read as inputs, so an output folder inside the input folder is safe.
    """
    from .io.atomic import check_parent
    from .io.formats import volume_format
    from .io.images import check_writable

    src_root, out_root = Path(input_path), Path(output_path)
    if src_root.exists() and out_root.exists() and src_root.resolve() == out_root.resolve():
        raise InputError(f"output {out_root} is the input itself; translating would overwrite it. Choose another output")
    files = list_inputs(src_root, "input")
    if src_root.is_dir():
        files = [f for f in files if not _is_within(f, out_root)]  # never our own outputs
        if not files:
            raise InputError(f"input folder {src_root} holds only files under the output folder {out_root}")
    looks_like_file = (out_root.suffix != "" or str(out_root).lower().endswith(".nii.gz")) and not out_root.is_dir()
    one_series = src_root.is_dir() and len(files) == 1 and is_dicom(files[0]) and volume_format(out_root) is not None
    if src_root.is_dir() and looks_like_file and volume_format(out_root) is not None and not one_series and not dicom_out:
        raise InputError(f"{src_root} holds {len(files)} inputs but the output {out_root} is named as one volume file; "
                         "name an output folder instead")
    single = src_root.is_file() or one_series  # a folder holding one DICOM series is one volume
    named = single and not (dicom_out and is_dicom(files[0])) and looks_like_file
    if dicom_out and not any(is_dicom(f) for f in files):
        raise InputError("--dicom-out writes DICOM series, but the input holds no DICOM series")
    inputs = {f.resolve() for f in files}
    plan = []
    for f in files:
        dst = _output_for(f, src_root, out_root, single, named, dicom_out)
        as_dicom = dicom_out and is_dicom(f)
        if not as_dicom and is_volume(f) != (volume_format(dst) is not None):
            kind = "a volume" if is_volume(f) else "a 2D image"
            want = ".nii.gz, .mgz, .nrrd or .mha" if is_volume(f) else "an image extension (.png, .tif, ...)"
            raise InputError(f"{f} is {kind} but the output {dst} is not named as one; name it {want}")
        check_parent(dst)
        if dst.resolve() in inputs:
            raise InputError(f"output {dst} is one of the inputs; translating would overwrite it. Choose another output")
        if named and not is_volume(f):  # only a named output can change the format (a folder keeps each file's)
            check_writable(dst, read_image(f)[1].dtype)
        plan.append((f, dst))
    return check_plan(plan, overwrite, inputs, uncertainty=uncertainty)


def companions(dst: Path, sidecar: bool = False, uncertainty: bool = False) -> list[Path]:
    """The files a writer creates beside ``dst``: the data file of a detached .mhd/.nhdr header (SimpleITK names it
    <stem>.raw), a BIDS JSON sidecar, the uncertainty map (and its own data file)."""
    name = dst.name.lower()
    out = [dst.with_suffix(".raw")] if name.endswith((".mhd", ".nhdr")) else []
    if sidecar:
        out.append(dst.with_name(dst.name.removesuffix(".nii.gz").removesuffix(".nii") + ".json"))
    if uncertainty:
        out += [uncertainty_path(dst), *companions(uncertainty_path(dst), sidecar)]
    return out


def check_plan(plan: list[tuple[Path, Path]], overwrite: bool, inputs: set[Path] | None = None, sidecars: bool = False,
               uncertainty: bool = False) -> list[tuple[Path, Path]]:
    """Every file the plan writes (outputs and their companions) checked before any work: no two inputs write one
    path, nothing written is an input or another volume's data file, and existing outputs need ``overwrite``."""
    from .io.formats import own_data_files

    inputs = inputs if inputs is not None else {f.resolve() for f, _ in plan}
    writer: dict[Path, Path] = {}
    existing: list[Path] = []
    for f, dst in plan:
        for path in (dst, *companions(dst, sidecars, uncertainty)):
            key = path.resolve()
            if key in writer:
                raise InputError(f"{writer[key]} and {f} would both be written to {path}; translate them into separate folders or rename one")
            writer[key] = f
            if key in inputs:
                raise InputError(f"output {path} is one of the inputs; translating would overwrite it. Choose another output")
            if path.exists() or path.is_symlink():
                header = uncertainty_path(dst) if uncertainty and path.name in own_data_files(uncertainty_path(dst)) else dst
                if path != dst and path.suffix == ".raw" and path.name not in own_data_files(header):
                    raise InputError(f"{dst} would write its data file {path}, which already exists and is not that header's own; "
                                     "choose another output name")
                existing.append(path)
    if existing and not overwrite:
        raise InputError(
            f"{len(existing)} output(s) already exist (e.g. {existing[0]}); pass --overwrite to replace them or choose another output"
        )
    return plan


def _read(f: Path):
    return read_any(f) if is_volume(f) else read_image(f)


def _write(dst: Path, f: Path, result, info, direction: str) -> Path:
    if is_volume(f):
        from .io.formats import volume_format

        if volume_format(dst) is None:  # --dicom-out
            from .io.dicom import write_dicom_series

            contrast = Direction(direction).target.bids_suffix
            source = getattr(result.header, "source", f.name)
            return write_dicom_series(dst, result, f"SYNTHETIC {contrast} from {source}")
        return write_volume(dst, result)
    return write_image(dst, result, info.dtype)


def plan_bids(root: str | Path, output_path: str | Path | None, direction: str, subjects: list[str] | None, overwrite: bool,
              uncertainty: bool = False) -> list[tuple[Path, Path]]:
    """A BIDS dataset's source-contrast images -> their BIDS-derivatives names under ``output_path``
    (default ROOT/derivatives/mri-cyclegan)."""
    from .io.bids import PIPELINE, derivative_path, find_bids

    r = Path(root)
    out_root = Path(output_path) if output_path else r / "derivatives" / PIPELINE
    d = Direction(direction)
    files = find_bids(r, d.source.bids_suffix, subjects)
    plan = [(f, derivative_path(r, out_root, f, d.target.bids_suffix)) for f in files]
    return check_plan(plan, overwrite, sidecars=True, uncertainty=uncertainty)


def _slice_count(volume: Volume, axis: str) -> int:
    """Slices of a volume along the training axis (the voxel axis closest to it)."""
    from .io.geometry import closest_axis

    return int(volume.data.shape[closest_axis(volume.affine, axis)])


def _write_uncertainty(dst: Path, f: Path, unc: np.ndarray, like: Volume | None) -> Path:
    """The uncertainty map beside output ``dst``: float32, on the output's grid (volumes keep the affine)."""
    path = uncertainty_path(dst)
    if like is None:
        return write_image(path, unc, "float32")
    from .io.formats import write_map

    return write_map(path, unc, like)


def _write_and_finish(dst: Path, f: Path, result, info, direction: str, finish, unc=None) -> Path:
    unc_path = _write_uncertainty(dst, f, unc, result if is_volume(f) else None) if unc is not None else None
    path = _write(dst, f, result, info, direction)
    if finish is not None:
        finish(path, f, unc_path)
    return path


def translate_path(translator: Translator, input_path: str | Path, output_path: str | Path | None, direction: str, progress: bool = True,
                   overwrite: bool = False, prefetch: int = 2, dicom_out: bool = False, subjects: list[str] | None = None,
                   model_name: str = "", uncertainty: Sequence[Member] = ()) -> list[Path]:
    """Translate an image, a volume, a DICOM series, or a folder of them; returns the paths written. A BIDS root
    is translated into a BIDS-derivatives dataset (``subjects`` restricts it), each image with a JSON sidecar.

    Reading and writing overlap with compute: while the model translates, worker threads read the next
    ``prefetch`` files and write the previous results (at most ``prefetch`` results wait to be written). Files
    are translated in groups of about ``translator.batch_size`` slices, whose same-size slices share batches
    (:meth:`Translator.translate_stacks`): a folder of images, or volumes smaller than a batch, fill the device.
    With ``uncertainty`` members, each output gets its uncertainty map beside it (:func:`uncertainty_path`)."""
    import time
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from .io.bids import is_bids_root

    direction = normalize_direction(direction)
    bids = is_bids_root(input_path)
    if bids:
        plan = plan_bids(input_path, output_path, direction, subjects, overwrite, bool(uncertainty))
    elif output_path is None:
        raise InputError("name an OUTPUT file or folder (only a BIDS dataset as INPUT has a default output)")
    elif subjects:
        raise InputError(f"--subjects selects subjects of a BIDS dataset, but {input_path} is not one")
    else:
        plan = plan_outputs(input_path, output_path, overwrite, dicom_out, bool(uncertainty))
    if bids:
        from . import __version__
        from .io.bids import write_dataset_description, write_sidecar

        out_root = Path(output_path) if output_path else Path(input_path) / "derivatives" / "mri-cyclegan"

        def finish(dst: Path, src: Path, unc: Path | None) -> None:  # the dataset description comes with the first image:
            write_dataset_description(out_root, __version__, Path(input_path))  # a run that fails before any leaves nothing
            write_sidecar(dst, Path(input_path), src, model_name, direction, __version__)
            if unc is not None:
                write_sidecar(unc, Path(input_path), src, model_name, direction, __version__, map_of=dst.relative_to(out_root))
    else:
        finish = None
    written: list[Path] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mri-cyclegan-io") as io:
        todo = iter(plan)
        reads: deque = deque()
        writes: deque = deque()

        def read_next() -> None:
            item = next(todo, None)
            if item is not None:
                reads.append((item, io.submit(_read, item[0])))

        for _ in range(max(1, prefetch)):
            read_next()
        bar = tqdm(total=len(plan), disable=not progress or len(plan) < 2, unit="file")
        group: list = []  # files read and waiting to be translated together
        slices = 0

        def flush() -> None:
            volumes = [loaded if is_volume(f) else Volume(loaded[0]) for f, _, loaded in group]
            outs = translator.translate_many_with_uncertainty(volumes, direction, uncertainty)
            for (f, dst, loaded), vol, (data, unc) in zip(group, volumes, outs):
                if is_volume(f):
                    result, info = Volume(data=data, affine=vol.affine, header=vol.header, path=None), None
                else:
                    result, info = data, loaded[1]
                writes.append(io.submit(_write_and_finish, dst, f, result, info, direction, finish, unc))
                bar.update(1)
            group.clear()
            while len(writes) > max(1, prefetch):
                written.append(writes.popleft().result())
                log.info("wrote %s", written[-1])

        for k in range(len(plan)):
            (f, dst), future = reads.popleft()
            loaded = future.result()
            read_next()
            group.append((f, dst, loaded))
            slices += _slice_count(loaded, translator.config.data.axis) if is_volume(f) else 1
            if slices >= translator.batch_size or k == len(plan) - 1:  # a batch's worth of slices, across files
                flush()
                slices = 0
        bar.close()
        while writes:
            written.append(writes.popleft().result())
            log.info("wrote %s", written[-1])
    seconds = time.perf_counter() - start
    if len(written) > 1:
        log.info("translated %d files in %.1f s (%.1f per minute)", len(written), seconds, 60 * len(written) / max(seconds, 1e-9))
    return written
