"""Where a model's errors are, by the true intensity: one table per direction of the share of voxels wrong by more
than 0.1 (each image in its own 0.5/99.5 percentile window, in the scoring mask; the uncertainty map's target) and
the mean signed error, in fifths of the reference's intensities; for the model and for its lookup table alone
(``evaluate``'s baseline: the untrained model).

    python benchmarks/error_by_intensity.py /tmp/unc/demo/run/checkpoints/last.safetensors --case demo

``--case demo`` scores the demo's held-out slabs, ``--case b`` (c, d, e) simulated subject 100 (benchmarks/faithfulness.py).
An uncertainty map can only rank errors that are concentrated somewhere; errors spread evenly over a tissue class are
invisible to it. Writes benchmarks/results/error_by_intensity.json (``--json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import machine, write_json  # noqa: E402
from faithfulness import DIRECTIONS  # noqa: E402
from uncertainty import test_volumes  # noqa: E402

from mri_cyclegan.metrics import ERROR_THRESHOLD, to_unit  # noqa: E402


def by_fifth(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> list[dict[str, float]]:
    e = to_unit(pred) - to_unit(ref)
    r = to_unit(ref)
    edges = np.quantile(r[mask], np.linspace(0, 1, 6))
    rows = []
    for i in range(5):
        sel = mask & (r >= edges[i]) & ((r < edges[i + 1]) if i < 4 else (r <= edges[i + 1]))
        rows.append({"from": float(edges[i]), "to": float(edges[i + 1]), "voxels": int(sel.sum()),
                     "wrong": float((np.abs(e[sel]) > ERROR_THRESHOLD).mean()), "bias": float(e[sel].mean()), "sd": float(e[sel].std())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--case", default="demo")
    ap.add_argument("--json", default="error_by_intensity.json")
    args = ap.parse_args()
    from mri_cyclegan.inference import Translator

    tr = Translator.from_checkpoint(args.checkpoint, device="cpu")
    vols, mask, _, _ = test_volumes(args.case, tr.config)
    out = {}
    for direction, (a, b) in DIRECTIONS.items():
        table = tr.table_translation(vols[a], direction)
        out[direction] = {"model": by_fifth(tr.translate(vols[a], direction), vols[b].data, mask),
                          "table": by_fifth(table, vols[b].data, mask)}
        print(f"{direction}: reference intensity fifth | share wrong by > {ERROR_THRESHOLD}, mean signed error: model | table")
        for k, (m, t) in enumerate(zip(out[direction]["model"], out[direction]["table"])):
            print(f"  {k + 1}  {m['from']:.2f}-{m['to']:.2f}  {m['wrong'] * 100:5.1f} % {m['bias']:+.3f} | {t['wrong'] * 100:5.1f} % {t['bias']:+.3f}")
    print(f"wrote {write_json(args.json, {'machine': machine(), 'args': {k: str(v) for k, v in vars(args).items()}, 'results': out})}")


if __name__ == "__main__":
    main()
