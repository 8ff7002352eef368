"""BIDS datasets: find the T1w/T2w images of every subject/session, and write translations as a BIDS-derivatives
dataset (``derivatives/mri-cyclegan/sub-*/[ses-*/]anat/*_desc-synthetic_T2w.nii.gz`` with a JSON sidecar)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from ..directions import Contrast, Direction
from ..errors import InputError
from .atomic import atomic_path

log = logging.getLogger(__name__)

PIPELINE = "mri-cyclegan"
RAW = "raw"  # the source dataset's name in BIDS URIs (bids:raw:sub-01/anat/...), defined by DatasetLinks
README = """# mri-cyclegan synthetic contrasts

Synthetic T1w/T2w images translated by an unpaired CycleGAN (mri-cyclegan {version}) from the raw dataset
linked as `{raw}` in dataset_description.json (`DatasetLinks`). Each image's JSON sidecar names its source
(`Sources`), the model and the direction.

These images are synthetic: the model may erase or invent pathology. They are not for diagnosis.
An `*_uncertainty.nii.gz` beside an image, where present, maps where not to trust it (same grid, intensity units).
"""


def is_bids_root(path: str | Path) -> bool:
    """A folder with dataset_description.json, or with sub-*/anat or sub-*/ses-*/anat folders."""
    p = Path(path)
    if not p.is_dir():
        return False
    return (p / "dataset_description.json").is_file() or any(d.is_dir() for d in (*p.glob("sub-*/anat"), *p.glob("sub-*/ses-*/anat")))


def _subject_labels(subjects: list[str] | None) -> set[str] | None:
    return None if not subjects else {s.strip().removeprefix("sub-") for s in subjects if s.strip()}


def find_bids(root: str | Path, suffix: str, subjects: list[str] | None = None) -> list[Path]:
    """Every ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` under ``root`` (raw data only, not derivatives)."""
    r = Path(root)
    wanted = _subject_labels(subjects)
    files = []
    for pattern in (f"sub-*/anat/*_{suffix}.nii*", f"sub-*/ses-*/anat/*_{suffix}.nii*"):
        for f in r.glob(pattern):
            if not f.name.endswith((".nii", ".nii.gz")):
                continue
            label = f.relative_to(r).parts[0].removeprefix("sub-")
            if wanted is None or label in wanted:
                files.append(f)
    if wanted is not None:
        found = {f.relative_to(r).parts[0].removeprefix("sub-") for f in files}
        missing = sorted(wanted - found)
        if missing:
            raise InputError(f"BIDS dataset {r}: no *_{suffix} image for subject(s) {', '.join(missing)}; check --subjects")
    if not files:
        raise InputError(f"BIDS dataset {r} has no sub-*/[ses-*/]anat/*_{suffix}.nii[.gz] images")
    return sorted(files)


def contrast_files(path: str | Path, contrast: str, subjects: list[str] | None = None, what: str = "input") -> list[Path]:
    """The inputs of one contrast ('t1'/'t2'): a BIDS root stands for its *_T1w (or *_T2w) images; anything else
    is a file or folder searched as usual (``subjects`` then is an error: it only selects BIDS subjects)."""
    from .files import list_inputs

    if is_bids_root(path):
        suffix = Contrast(contrast).bids_suffix
        files = find_bids(path, suffix, subjects)
        log.info("BIDS dataset %s: %d *_%s images", path, len(files), suffix)
        return files
    if subjects:
        raise InputError(f"--subjects selects subjects of a BIDS dataset, but {path} is not one (no dataset_description.json or sub-*/anat)")
    return list_inputs(path, what)


def derivatives_root(root: str | Path, output: str | Path | None) -> Path:
    """Where translations of the BIDS dataset ``root`` go: ``output`` if given, else ROOT/derivatives/mri-cyclegan."""
    return Path(output) if output else Path(root) / "derivatives" / PIPELINE


def derivative_name(src: Path, target_suffix: str, desc: str = "synthetic") -> str:
    """sub-01_ses-1_run-1_T1w.nii.gz -> sub-01_ses-1_run-1_desc-synthetic_T2w.nii.gz (an existing desc- replaced)."""
    name = src.name
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    stem = name[: -len(ext)]
    entities, _, _ = stem.rpartition("_")
    entities = re.sub(r"_desc-[A-Za-z0-9]+", "", "_" + entities)[1:]
    return f"{entities}_desc-{desc}_{target_suffix}.nii.gz"


def derivative_path(root: Path, out_root: Path, src: Path, target_suffix: str) -> Path:
    return out_root / src.relative_to(root).parent / derivative_name(src, target_suffix)


def write_dataset_description(out_root: Path, version: str, source_root: Path) -> None:
    """dataset_description.json and README of a new derivatives dataset (an existing one is left as it is).

    The source is linked by a path relative to the derivatives folder (``DatasetLinks``), never by an absolute
    ``file://`` URL: that would publish a local directory name and break when both folders move together."""
    path = out_root / "dataset_description.json"
    if path.exists():
        return
    link = Path(os.path.relpath(source_root.resolve(), out_root.resolve())).as_posix()
    desc = {
        "Name": "mri-cyclegan synthetic contrasts",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PIPELINE, "Version": version, "Description": "CycleGAN T1w<->T2w translation"}],
        "SourceDatasets": [{"URL": f"bids:{RAW}:"}],
        "DatasetLinks": {RAW: link},
    }
    readme = out_root / "README.md"
    if not readme.exists() and not (out_root / "README").exists():
        with atomic_path(readme) as tmp:
            tmp.write_text(README.format(version=version, raw=RAW))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(desc, indent=2) + "\n")


def _skull_stripped(src: Path) -> bool:
    """The source image's own sidecar says whether it was skull-stripped (a translation keeps that); raw BIDS images
    without the key are not."""
    sidecar = src.with_name(src.name.removesuffix(".nii.gz").removesuffix(".nii") + ".json")
    try:
        value = json.loads(sidecar.read_text()).get("SkullStripped") if sidecar.is_file() else None
    except (OSError, ValueError, AttributeError):
        value = None
    return value if isinstance(value, bool) else False


def write_sidecar(image_path: Path, root: Path, src: Path, model: str, direction: str, version: str, map_of: Path | None = None) -> Path:
    """The JSON beside a synthetic image: what made it, from what, and that it is synthetic. With ``map_of`` (the
    synthetic image's path inside the derivatives dataset), the JSON of that image's uncertainty map instead."""
    path = image_path.with_name(image_path.name.removesuffix(".nii.gz").removesuffix(".nii") + ".json")
    d = Direction(direction)
    description = (f"Synthetic {d.target.bids_suffix} translated from {d.source.bids_suffix} by a CycleGAN; "
                   "may hallucinate or erase pathology; not for diagnosis")
    sources = [f"bids:{RAW}:{src.relative_to(root).as_posix()}"]
    if map_of is not None:
        description = (f"Voxel-wise uncertainty of the synthetic image {map_of.name}, in its intensity units (float32, same grid): "
                       "where it is high, do not trust the synthetic image")
        sources = [f"bids::{map_of.as_posix()}", *sources]
    info = {
        "Description": description,
        "Sources": sources,
        "GeneratedBy": [{"Name": PIPELINE, "Version": version}],
        "Model": model,
        "Direction": d.value,
        "SkullStripped": _skull_stripped(src),  # required for anatomical derivatives (BIDS validator: SIDECAR_KEY_REQUIRED)
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return path
