"""Check the report's slice viewer in headless Chromium: it renders, and moving the sliders changes the picture.

Builds a report with ``mri-cyclegan evaluate --uncertainty`` on a constructed volume (or takes ``--report``), takes
screenshots at the default crosshair and at a crosshair set through the sliders (a ``#viewer-...=x,y,z`` link, which
dispatches the sliders' own input events), and checks that the viewer drew non-blank pictures that differ.

    python benchmarks/viewer_check.py --out /tmp/viewer_check          # needs Debian's chromium (/usr/bin/chromium)
    python benchmarks/viewer_check.py --report /tmp/demo/report.html --out docs/   # screenshot an existing report

Exit 0 when every check passes. Writes the screenshots and benchmarks/results/viewer_check.json.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found: apt-get install chromium")


def screenshot(html: Path, fragment: str, out: Path, size=(1500, 1700)) -> np.ndarray:
    from PIL import Image

    with tempfile.TemporaryDirectory() as profile:
        url = html.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB")).astype(np.int16)


def dom(html: Path, fragment: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        url = html.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                              check=True, capture_output=True, text=True, timeout=120).stdout


def constructed_report(work: Path) -> Path:
    """A phantom volume 'translated' with a known error and an uncertainty map, evaluated into a report."""
    import nibabel as nib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mri_cyclegan.cli import main
    from tests.phantoms import volume_pair

    t1, t2 = volume_pair((64, 72, 40), seed=5)
    rng = np.random.default_rng(0)
    pred = t2 + rng.normal(0, 150, t2.shape) * (np.arange(40)[None, None, :] / 40) ** 2  # worse towards the top
    aff = np.diag([1.0, 1.0, 1.5, 1.0])
    for name, data in (("ref.nii.gz", t2), ("pred.nii.gz", pred), ("pred_uncertainty.nii.gz", np.abs(pred - t2)), ("input.nii.gz", t1)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), aff), work / name)
    assert main(["evaluate", "--pred", str(work / "pred.nii.gz"), "--ref", str(work / "ref.nii.gz"), "--input", str(work / "input.nii.gz"),
                 "--out", str(work / "ev"), "--uncertainty"]) == 0
    return work / "ev" / "report.html"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", help="an existing report.html with a viewer (default: build one)")
    ap.add_argument("--out", default="/tmp/viewer_check")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Path(args.report) if args.report else constructed_report(Path(tempfile.mkdtemp(prefix="viewer_")))
    text = report.read_text()
    vid = re.search(r'class="viewer" id="([^"]+)" data-shape="(\d+),(\d+),(\d+)"', text)
    if not vid:
        raise SystemExit(f"{report} has no viewer")
    name, shape = vid.group(1), [int(vid.group(i)) for i in (2, 3, 4)]
    moved = [s // 4 for s in shape]  # a quarter of the way along every axis
    fragment = f"{name}={','.join(map(str, moved))}"
    a = screenshot(report, "", out / "viewer_default.png")
    b = screenshot(report, fragment, out / "viewer_moved.png")
    dom_default, dom_moved = dom(report, ""), dom(report, fragment)
    ready = 'data-ready="1"' in dom_default and 'data-ready="1"' in dom_moved
    pos_default = re.search(r'data-position="([\d,]+)"', dom_default)
    pos_moved = re.search(r'data-position="([\d,]+)"', dom_moved)
    changed = float((np.abs(a - b).sum(-1) > 30).mean())
    checks = {
        "viewer ran (data-ready)": ready,
        "default crosshair at the centre": bool(pos_default) and pos_default.group(1) == ",".join(str(s // 2) for s in shape),
        "sliders moved the crosshair": bool(pos_moved) and pos_moved.group(1) == ",".join(map(str, moved)),
        "pictures drawn (not blank)": float(a.std()) > 10,
        "moving the sliders changed the picture (> 1 % of pixels)": changed > 0.01,
    }
    for k, v in checks.items():
        print(f"{'PASS' if v else 'FAIL'}  {k}")
    print(f"changed pixels: {100 * changed:.1f} %; screenshots in {out}")
    write_json("viewer_check.json", {"machine": machine(), "report": str(report), "fragment": fragment, "changed_fraction": changed,
                                     "checks": checks, "chromium": subprocess.run([chromium(), "--version"], capture_output=True, text=True).stdout.strip()})
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
