"""Per-voxel uncertainty of a translation: how much the output moves when the input is perturbed in ways that should
not matter.

Each estimator is a *member*: another prediction of the same slices from a perturbed input (or from the prior
alone), brought back onto the output's pixels. The uncertainty is the root-mean-square difference between the
members and the translation the user gets (which is never changed by asking for the map):

    u = sqrt(sum_i w_i (member_i - translation)^2 / sum_i w_i)

in model units (the output's [-1, 1] window); :meth:`Preprocessor.inverse_magnitude` carries it to the output's
intensity units. The default members were chosen with ``benchmarks/uncertainty.py`` (AUROC for voxels whose error
exceeds 0.1 of the window, lesion / white-matter ratio, cost); see docs/uncertainty.md.

Members (each costs one more generator pass unless said otherwise):

- ``flip``: the slices mirrored along their second axis, translated, mirrored back;
- ``shift``: the slices moved by one pixel along both axes (the generator downsamples by 4, so a one-pixel move
  changes what it sees), translated, moved back;
- ``gain``: the input's intensities scaled by 1 +- ``GAIN`` about the background (two passes): how much the output
  hinges on exactly where the intensity window fell; large where a small intensity change moves a voxel between
  tissue classes (partial volume, lesions whose intensity sits between classes);
- ``offset``: the input's intensities moved by +- ``OFFSET`` (two passes): like ``gain`` but the same everywhere,
  dark tissue included;
- ``edge``: the translation itself moved by half a voxel along each in-plane axis (no generator pass): where the exact
  position of an edge is unknown by half a voxel (partial volume, resampling), the intensity there is unknown by half
  the step across it;
- ``prior``: the lookup table alone (no generator pass): where the network moved away from the prior;
- ``cycle``: the translation of the input's cycle reconstruction G(G'(G(x))) (two passes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

import torch

GAIN = 0.05  # intensity gain perturbation of the ``gain`` member (5 % of the window)
OFFSET = 0.05  # intensity offset of the ``offset`` member (model units: 2.5 % of the window)


class Member(str, Enum):
    FLIP = "flip"
    SHIFT = "shift"
    GAIN = "gain"
    OFFSET = "offset"
    EDGE = "edge"
    PRIOR = "prior"
    CYCLE = "cycle"


# chosen by benchmarks/uncertainty.py (docs/uncertainty.md): AUROC >= 0.8 on the demo's held-out slabs and on every
# lesion case, in both directions, for one extra generator pass; intensity perturbations (gain, offset) pointed away
# from the errors. With today's training defaults the demo's T2 -> T1 is 0.69 (the table's CSF error, docs), the
# lesion cases >= 0.80
DEFAULT_MEMBERS: tuple[Member, ...] = (Member.PRIOR, Member.FLIP, Member.EDGE)
# how many predictions each member gives (its generator passes are in the module docstring)
OUTPUTS = {Member.FLIP: 1, Member.SHIFT: 1, Member.GAIN: 2, Member.OFFSET: 2, Member.EDGE: 2, Member.PRIOR: 1, Member.CYCLE: 1}
# weight of each member's squared difference in the mean (1 unless said): the edge term alone flags every tissue
# boundary; at full weight it drowned the network's own disagreement in the lesion cases (benchmarks/uncertainty.py
# --edge-weights: every weight from 0.05 to 0.2 met the targets, 1 did not)
WEIGHTS = {Member.EDGE: 0.1}


def member_weights(which: Sequence[Member]) -> list[float]:
    """The weight of each prediction :func:`members` returns for ``which``, in the same order."""
    return [WEIGHTS.get(m, 1.0) for m in which for _ in range(OUTPUTS[m])]


def parse_members(spec: str | Sequence[str]) -> tuple[Member, ...]:
    """'flip,gain' or ['flip', 'gain'] -> members; ValueError names the unknown one."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    try:
        members = tuple(Member(n.lower()) for n in names)
    except ValueError:
        bad = next(n for n in names if n.lower() not in {m.value for m in Member})
        raise ValueError(f"unknown uncertainty member {bad!r}; choose from {', '.join(m.value for m in Member)}") from None
    if not members:
        raise ValueError("name at least one uncertainty member")
    return members


def gain(x: torch.Tensor, g: float) -> torch.Tensor:
    """Model-space intensities scaled by ``1 + g`` about the background (-1), kept inside [-1, 1]."""
    return ((x + 1.0) * (1.0 + g) - 1.0).clamp(-1.0, 1.0)


def half_voxel(y: torch.Tensor, dim: int) -> torch.Tensor:
    """``y`` moved by half a voxel along ``dim`` (linear interpolation; the last row kept)."""
    nxt = torch.cat([y.narrow(dim, 1, y.shape[dim] - 1), y.narrow(dim, y.shape[dim] - 1, 1)], dim)
    return 0.5 * (y + nxt)


def members(windows: torch.Tensor, predict: Callable[[torch.Tensor], torch.Tensor], which: Sequence[Member],
            prior: Callable[[torch.Tensor], torch.Tensor] | None = None,
            reverse: Callable[[torch.Tensor], torch.Tensor] | None = None, prediction: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The member predictions of (N, K, h, w) model-space ``windows``, each (N, K, h, w) on the output's pixels.

    ``predict`` is the translation itself (``prediction``, its result on ``windows``, saves a pass), ``prior`` the lookup
    table (with the output calibration) and ``reverse`` the other direction's translation (for ``cycle``)."""
    out: list[torch.Tensor] = []
    for m in which:
        if m is Member.FLIP:
            out.append(predict(windows.flip(-1)).flip(-1))
        elif m is Member.SHIFT:
            out.append(predict(windows.roll((1, 1), (-2, -1))).roll((-1, -1), (-2, -1)))
        elif m is Member.GAIN:
            out += [predict(gain(windows, GAIN)), predict(gain(windows, -GAIN))]
        elif m is Member.OFFSET:
            out += [predict((windows + OFFSET).clamp(-1.0, 1.0)), predict((windows - OFFSET).clamp(-1.0, 1.0))]
        elif m is Member.EDGE:
            y = prediction if prediction is not None else predict(windows)
            out += [half_voxel(y, -2), half_voxel(y, -1)]
        elif m is Member.PRIOR:
            if prior is None:
                raise ValueError("the prior member needs a model with a lookup-table prior")
            out.append(prior(windows))
        elif m is Member.CYCLE:
            if reverse is None:
                raise ValueError("the cycle member needs the reverse generator")
            out.append(predict(reverse(predict(windows))))
    return out


def spread(prediction: torch.Tensor, others: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """Root-mean-square difference between member predictions and the prediction (same shapes), each member's
    squared difference weighted by ``weights`` (default: all 1)."""
    if not others:
        raise ValueError("no members to compare with")
    weights = [1.0] * len(others) if weights is None else list(weights)
    if len(weights) != len(others) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"need one non-negative weight per member, not all 0; got {weights} for {len(others)} members")
    acc = torch.zeros_like(prediction)
    for o, w in zip(others, weights):
        acc += w * (o - prediction) ** 2
    return (acc / sum(weights)).sqrt()


# ---------------------------------------------------------------------------------------------- files
UNCERTAINTY_TAG = "_uncertainty"
MAP_EXTENSIONS = (".nii.gz", ".nii", ".mgz", ".mgh", ".nrrd", ".nhdr", ".mha", ".mhd")  # volume outputs: the map keeps the format


BIDS_DESC = re.compile(r"^(?P<head>.*_desc-)(?P<label>[A-Za-z0-9]+)(?P<tail>_[A-Za-z0-9]+\.nii(?:\.gz)?)$")
BIDS_UNCERTAINTY = "Uncertainty"  # appended to a BIDS derivative's desc label: desc-synthetic -> desc-syntheticUncertainty


def uncertainty_path(dst: Path) -> Path:
    """Where the uncertainty map of the output ``dst`` goes: ``<stem>_uncertainty<same extension>`` for a volume, a
    float32 ``<stem>_uncertainty.tif`` for a 2D image (any bit depth, no rounding), ``<folder>_uncertainty.nii.gz``
    beside a DICOM series folder (--dicom-out). A BIDS derivative (``sub-01_desc-synthetic_T2w.nii.gz``) keeps a
    BIDS-valid name: ``sub-01_desc-syntheticUncertainty_T2w.nii.gz``."""
    name = dst.name
    bids = BIDS_DESC.match(name)
    if bids:
        return dst.with_name(bids["head"] + bids["label"] + BIDS_UNCERTAINTY + bids["tail"])
    for ext in MAP_EXTENSIONS:
        if name.lower().endswith(ext):
            return dst.with_name(name[: -len(ext)] + UNCERTAINTY_TAG + name[-len(ext):])
    if dst.suffix == "":  # a --dicom-out series folder
        return dst.with_name(name + UNCERTAINTY_TAG + ".nii.gz")
    return dst.with_name(dst.stem + UNCERTAINTY_TAG + ".tif")


def is_uncertainty_map(path: Path) -> bool:
    """A file named like :func:`uncertainty_path` names maps (never scored or translated as an image)."""
    bids = BIDS_DESC.match(path.name)
    if bids and bids["label"].endswith(BIDS_UNCERTAINTY):
        return True
    name = path.name.lower()
    return any(name.endswith(UNCERTAINTY_TAG + ext) for ext in (*MAP_EXTENSIONS, ".tif"))
