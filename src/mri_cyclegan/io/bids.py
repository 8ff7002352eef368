"""BIDS datasets: find the T1w/T2w images of every subject/session, and write translations as a BIDS-derivatives
dataset (``derivatives/mri-cyclegan/sub-*/[ses-*/]anat/*_desc-synthetic_T2w.nii.gz`` with a JSON sidecar)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from ..errors import InputError
from .atomic import atomic_path

log = logging.getLogger(__name__)

PIPELINE = "mri-cyclegan"
SUFFIX = {"t1": "T1w", "t2": "T2w"}


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
        files = find_bids(path, SUFFIX[contrast], subjects)
        log.info("BIDS dataset %s: %d *_%s images", path, len(files), SUFFIX[contrast])
        return files
    if subjects:
        raise InputError(f"--subjects selects subjects of a BIDS dataset, but {path} is not one (no dataset_description.json or sub-*/anat)")
    return list_inputs(path, what)


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
    path = out_root / "dataset_description.json"
    if path.exists():
        return
    desc = {
        "Name": "mri-cyclegan synthetic contrasts",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PIPELINE, "Version": version, "Description": "CycleGAN T1w<->T2w translation"}],
        "SourceDatasets": [{"URL": source_root.resolve().as_uri()}],
    }
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


def write_sidecar(image_path: Path, root: Path, src: Path, model: str, direction: str, version: str) -> Path:
    """The JSON beside a synthetic image: what made it, from what, and that it is synthetic."""
    path = image_path.with_name(image_path.name.removesuffix(".nii.gz").removesuffix(".nii") + ".json")
    info = {
        "Description": f"Synthetic {SUFFIX[direction[-2:]]} translated from {SUFFIX[direction[:2]]} by a CycleGAN; "
                       "may hallucinate or erase pathology; not for diagnosis",
        "Sources": [f"bids:raw:{src.relative_to(root).as_posix()}"],
        "GeneratedBy": [{"Name": PIPELINE, "Version": version}],
        "Model": model,
        "Direction": direction,
        "SkullStripped": _skull_stripped(src),  # required for anatomical derivatives (BIDS validator: SIDECAR_KEY_REQUIRED)
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return path
