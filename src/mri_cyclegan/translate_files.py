"""Translating files: which output each input gets (checked before any work: nothing overwritten, no collisions,
no output inside an input), BIDS derivatives, and the pipeline that reads, translates in batches and writes with
I/O overlapping compute. The translation itself is :class:`mri_cyclegan.inference.Translator`."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .directions import Direction
from .errors import InputError
from .inference import Translator, normalize_direction
from .io import is_dicom, is_volume, list_inputs, read_any, read_image, write_image, write_volume
from .io.volume import Volume
from .uncertainty import Member, uncertainty_path

log = logging.getLogger(__name__)


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
    from .io.bids import derivative_path, derivatives_root, find_bids

    r = Path(root)
    out_root = derivatives_root(r, output_path)
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


Finish = Callable[[Path, Path, "Path | None"], None]  # (written output, its input, its uncertainty map) -> sidecars


class _Pipeline:
    """Reads up to ``prefetch`` files ahead and writes up to ``prefetch`` results behind, on two worker threads, while
    the caller translates: :meth:`next_input` hands out read files in plan order, :meth:`write` queues a result,
    :meth:`drain` waits for every write. Written paths collect in ``written``, in plan order."""

    def __init__(self, plan: list[tuple[Path, Path]], pool: ThreadPoolExecutor, prefetch: int) -> None:
        self.pool, self.prefetch = pool, max(1, prefetch)
        self.todo = iter(plan)
        self.reads: deque[tuple[tuple[Path, Path], Future]] = deque()
        self.writes: deque[Future] = deque()
        self.written: list[Path] = []
        for _ in range(self.prefetch):
            self._read_next()

    def _read_next(self) -> None:
        item = next(self.todo, None)
        if item is not None:
            self.reads.append((item, self.pool.submit(_read, item[0])))

    def next_input(self) -> tuple[Path, Path, object]:
        """(input, output, what was read) of the next planned file; starts reading the one after."""
        (f, dst), future = self.reads.popleft()
        loaded = future.result()
        self._read_next()
        return f, dst, loaded

    def write(self, *args) -> None:
        """Queue :func:`_write_and_finish` (args as it takes them); waits while too many results are pending."""
        self.writes.append(self.pool.submit(_write_and_finish, *args))
        while len(self.writes) > self.prefetch:
            self._collect()

    def drain(self) -> None:
        while self.writes:
            self._collect()

    def _collect(self) -> None:
        self.written.append(self.writes.popleft().result())
        log.info("wrote %s", self.written[-1])


def _bids_finish(input_path: Path, out_root: Path, model_name: str, direction: Direction) -> Finish:
    """Sidecars for every BIDS derivative (and its uncertainty map); the dataset description and README come with
    the first image, so a run that fails before any leaves nothing."""
    from . import __version__
    from .io.bids import write_dataset_description, write_sidecar

    def finish(dst: Path, src: Path, unc: Path | None) -> None:
        write_dataset_description(out_root, __version__, input_path)
        write_sidecar(dst, input_path, src, model_name, direction, __version__)
        if unc is not None:
            write_sidecar(unc, input_path, src, model_name, direction, __version__, map_of=dst.relative_to(out_root))

    return finish


def translate_path(translator: Translator, input_path: str | Path, output_path: str | Path | None, direction: str, progress: bool = True,
                   overwrite: bool = False, dicom_out: bool = False, prefetch: int = 2, subjects: list[str] | None = None,
                   model_name: str = "", uncertainty: Sequence[Member] = ()) -> list[Path]:
    """Translate a file, a folder (recursively, keeping the layout), a DICOM series or a BIDS dataset.

    Every output is planned and checked first (:func:`plan_outputs` / :func:`plan_bids`). Reading and writing
    overlap with compute (:class:`_Pipeline`): while the model translates, worker threads read the next ``prefetch``
    files and write the previous results. Files are translated in groups of about ``translator.batch_size``
    slices, whose same-size slices share batches (:meth:`Translator.translate_many_with_uncertainty`): a folder of
    images, or volumes smaller than a batch, fill the device. With ``uncertainty`` members, each output gets its
    uncertainty map beside it (:func:`uncertainty_path`)."""
    from tqdm.auto import tqdm

    from .io.bids import derivatives_root, is_bids_root

    direction = normalize_direction(direction)
    finish: Finish | None = None
    if is_bids_root(input_path):
        plan = plan_bids(input_path, output_path, direction, subjects, overwrite, bool(uncertainty))
        out_root = derivatives_root(input_path, output_path)
        finish = _bids_finish(Path(input_path), out_root, model_name, direction)
    elif output_path is None:
        raise InputError("name an OUTPUT file or folder (only a BIDS dataset as INPUT has a default output)")
    elif subjects:
        raise InputError(f"--subjects selects subjects of a BIDS dataset, but {input_path} is not one")
    else:
        plan = plan_outputs(input_path, output_path, overwrite, dicom_out, bool(uncertainty))

    start = time.perf_counter()
    bar = tqdm(total=len(plan), disable=not progress or len(plan) < 2, unit="file")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mri-cyclegan-io") as pool:
        io = _Pipeline(plan, pool, prefetch)
        group: list[tuple[Path, Path, object]] = []  # files read and waiting to be translated together
        slices = 0
        for k in range(len(plan)):
            f, dst, loaded = io.next_input()
            group.append((f, dst, loaded))
            slices += _slice_count(loaded, translator.config.data.axis) if is_volume(f) else 1
            if slices >= translator.batch_size or k == len(plan) - 1:  # a batch's worth of slices, across files
                _translate_group(translator, group, direction, uncertainty, io, finish)
                bar.update(len(group))
                group, slices = [], 0
        bar.close()
        io.drain()
    seconds = time.perf_counter() - start
    if len(io.written) > 1:
        log.info("translated %d files in %.1f s (%.1f per minute)", len(io.written), seconds, 60 * len(io.written) / max(seconds, 1e-9))
    return io.written


def _translate_group(translator: Translator, group: list[tuple[Path, Path, object]], direction: Direction,
                     uncertainty: Sequence[Member], io: _Pipeline, finish: Finish | None) -> None:
    """Translate a group of read files together and queue their writes."""
    volumes = [loaded if is_volume(f) else Volume(loaded[0]) for f, _, loaded in group]
    outs = translator.translate_many_with_uncertainty(volumes, direction, uncertainty)
    for (f, dst, loaded), vol, (data, unc) in zip(group, volumes, outs):
        if is_volume(f):
            result, info = Volume(data=data, affine=vol.affine, header=vol.header, path=None), None
        else:
            result, info = data, loaded[1]
        io.write(dst, f, result, info, direction, finish, unc)
