"""Volumes per minute for `translate` of a folder: reading/writing overlapped with compute (what the CLI does)
against one file after the other, on copies of the demo's T1 volume (193x229x193, 1 mm).

    python benchmarks/translate_folder.py --model demo_out/run [--copies 4]

Writes benchmarks/results/translate_folder.json. Run alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a run folder, e.g. the demo's demo_out/run")
    ap.add_argument("--copies", type=int, default=4)
    args = ap.parse_args()

    from mri_cyclegan.data.demo import load_demo_volumes
    from mri_cyclegan.inference import Translator, _read, _write, translate_path
    from mri_cyclegan.io import write_nifti

    root = Path(tempfile.mkdtemp(prefix="translate_folder_"))
    src = root / "in"
    demo = load_demo_volumes()
    for i in range(args.copies):
        write_nifti(src / f"s{i}.nii.gz", demo.t1, demo.affine)
    tr = Translator.from_checkpoint(args.model, device="cpu")
    t = time.perf_counter()
    for f in sorted(src.iterdir()):
        _write(root / "sequential" / f.name, f, tr.translate_volume(_read(f), "t1_to_t2"), None)
    sequential = time.perf_counter() - t
    t = time.perf_counter()
    translate_path(tr, src, root / "overlapped", "t1_to_t2", progress=False)
    overlapped = time.perf_counter() - t
    rows = {"sequential": sequential, "overlapped": overlapped}
    print(f"\n{args.copies} volumes {'x'.join(map(str, demo.t1.shape))}, CPU:")
    for k, v in rows.items():
        print(f"{k:>11}: {v:6.1f} s  {60 * args.copies / v:5.1f} volumes/min")
    print(f"wrote {write_json('translate_folder.json', {'machine': machine(), 'copies': args.copies, 'shape': list(demo.t1.shape), 'seconds': rows})}")


if __name__ == "__main__":
    main()
