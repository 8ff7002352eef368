"""Files per minute for `translate` of a folder: what the CLI does (reading/writing overlapped with compute,
same-size slices batched across files) against one file after the other; on copies of the demo's T1 volume
(145x181x155 here, 1 mm), and on a folder of 16-bit PNG slices of it (where batching across files matters).

    python benchmarks/translate_folder.py --model demo_out/run [--copies 4] [--images 96]

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
    ap.add_argument("--images", type=int, default=96, help="PNG slices for the image-folder case (0 = skip)")
    args = ap.parse_args()

    from mri_cyclegan.data.demo import load_demo_volumes
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.translate_files import _read, _write, translate_path
    from mri_cyclegan.io import write_nifti
    from mri_cyclegan.io.geometry import slices

    root = Path(tempfile.mkdtemp(prefix="translate_folder_"))
    src = root / "in"
    demo = load_demo_volumes()
    for i in range(args.copies):
        write_nifti(src / f"s{i}.nii.gz", demo.t1, demo.affine)
    tr = Translator.from_checkpoint(args.model, device="cpu")
    t = time.perf_counter()
    for f in sorted(src.iterdir()):
        _write(root / "sequential" / f.name, f, tr.translate_volume(_read(f), "t1_to_t2"), None, "t1_to_t2")
    sequential = time.perf_counter() - t
    t = time.perf_counter()
    translate_path(tr, src, root / "overlapped", "t1_to_t2", progress=False)
    overlapped = time.perf_counter() - t
    rows = {"volumes": {"files": args.copies, "sequential_s": sequential, "cli_s": overlapped}}
    if args.images:
        import numpy as np
        from PIL import Image

        from mri_cyclegan.io.geometry import slices

        img_dir = root / "png"
        img_dir.mkdir()
        sl = slices(demo.t1, "axial")
        zs = np.linspace(30, len(sl) - 30, args.images).round().astype(int)
        top = float(np.percentile(demo.t1, 99.9))
        for i, z in enumerate(zs):
            Image.fromarray(np.clip(sl[z] / top * 60000, 0, 65535).astype(np.uint16)).save(img_dir / f"slice_{i:03d}.png")
        t = time.perf_counter()
        for f in sorted(img_dir.iterdir()):
            arr, info = _read(f)
            _write(root / "png_sequential" / f.name, f, tr.translate_image(arr, "t1_to_t2"), info, "t1_to_t2")
        seq_img = time.perf_counter() - t
        t = time.perf_counter()
        translate_path(tr, img_dir, root / "png_cli", "t1_to_t2", progress=False)
        cli_img = time.perf_counter() - t
        rows["images"] = {"files": args.images, "sequential_s": seq_img, "cli_s": cli_img}
    print(f"\nvolumes {'x'.join(map(str, demo.t1.shape))}, images {'x'.join(map(str, slices(demo.t1, 'axial')[0].shape))}; CPU, batch {tr.batch_size}:")
    for kind, r in rows.items():
        print(f"{kind:>8}: one by one {r['sequential_s']:6.1f} s ({60 * r['files'] / r['sequential_s']:6.1f}/min)   "
              f"CLI {r['cli_s']:6.1f} s ({60 * r['files'] / r['cli_s']:6.1f}/min)   x{r['sequential_s'] / r['cli_s']:.2f}")
    print(f"wrote {write_json('translate_folder.json', {'machine': machine(), 'shape': list(demo.t1.shape), 'results': rows})}")


if __name__ == "__main__":
    main()
