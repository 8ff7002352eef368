import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from mri_cyclegan.cli import main
from mri_cyclegan.data.demo import load_demo_volumes, split_slabs
from mri_cyclegan.evaluate import match_pairs
from tests.phantoms import pair_2d


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "table" and "data-direction" in a:
            self.tables.append(a["data-direction"])

    def handle_data(self, data):
        self.text.append(data)


def parse_report(path):
    p = _Parser()
    p.feed(path.read_text())
    return p


def test_demo_split_has_no_leakage():
    v = load_demo_volumes()
    train, test = split_slabs(v.mask)
    assert len(test) == 24 and len(train) >= 60
    assert min(abs(a - b) for a in train for b in test) > 5  # > 5 mm from every test slice: no SSIM window reaches training
    runs = np.split(np.array(test), np.flatnonzero(np.diff(test) > 1) + 1)
    assert [len(r) for r in runs] == [8, 8, 8]  # three contiguous slabs
    assert v.t1.shape == v.t2.shape == v.mask.shape


def test_match_pairs(tmp_path):
    from pathlib import Path

    preds = [Path("a_fake.png"), Path("b.png"), Path("zzz.png")]
    refs = [Path("a.png"), Path("b.png")]
    assert match_pairs(preds, refs) == [(preds[0], refs[0]), (preds[1], refs[1])]


@pytest.fixture
def eval_folders(tmp_path):
    dirs = {k: tmp_path / k for k in ("input", "pred", "ref", "mask")}
    for d in dirs.values():
        d.mkdir()
    for i in range(3):
        t1, t2 = pair_2d((48, 40), seed=i)
        Image.fromarray(np.clip(t1 / 4, 0, 255).astype(np.uint8)).save(dirs["input"] / f"s{i}.png")
        Image.fromarray(np.clip(t2 / 4, 0, 255).astype(np.uint8)).save(dirs["ref"] / f"s{i}.png")
        noisy = t2 + np.random.default_rng(i).normal(0, 60, t2.shape) * (t2 > 0)
        Image.fromarray(np.clip(noisy / 4, 0, 255).astype(np.uint8)).save(dirs["pred"] / f"s{i}.png")
        Image.fromarray(((t2 > 0) * 255).astype(np.uint8)).save(dirs["mask"] / f"s{i}.png")
    return dirs


def test_evaluate_cli_metrics_and_report(eval_folders, tmp_path, capsys):
    out = tmp_path / "ev"
    d = eval_folders
    args = ["evaluate", "--pred", str(d["pred"]), "--ref", str(d["ref"]), "--mask", str(d["mask"]), "--input", str(d["input"]), "--out", str(out)]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())["t1_to_t2"]
    assert set(m) >= {"model", "identity", "inverse_histogram", "per_image"}
    assert m["model"]["n"] == 3 and len(m["per_image"]) == 3
    assert m["model"]["psnr"] > m["identity"]["psnr"] and m["identity"]["ssim"] < 0.5
    assert m["inverse_histogram"]["psnr"] > m["identity"]["psnr"]  # inversion fixes the tissue order
    rep = parse_report(out / "report.html")
    assert rep.tables == ["t1_to_t2"]
    assert len(rep.imgs) == 3 * 4 and all(src.startswith("data:image/png;base64,") for src in rep.imgs)
    text = " ".join(rep.text)
    assert "inverse histogram matching" in text and re.search(r"\d+\.\d\d ± ", text)
    assert "model" in capsys.readouterr().out


def test_evaluate_shape_mismatch_exit_2(eval_folders, tmp_path, capsys):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(eval_folders["pred"] / "s0.png")
    assert main(["evaluate", "--pred", str(eval_folders["pred"]), "--ref", str(eval_folders["ref"]), "--out", str(tmp_path / "e")]) == 2
    assert "s0.png" in capsys.readouterr().err


def test_demo_tiny_budget(tmp_path, monkeypatch):
    import nibabel as nib

    from mri_cyclegan import demo

    from mri_cyclegan.data import demo as demo_data

    for key, value in {"data.patch_size": 32, "model.ngf": 4, "model.n_blocks": 1, "train.iters_per_epoch": 2}.items():
        monkeypatch.setitem(demo.DEMO_OVERRIDES, key, value)
    full = demo_data.load_demo_volumes()
    box = (slice(32, 160), slice(36, 196), slice(40, 150))  # the central 128 x 160 x 110 (suite time)
    monkeypatch.setattr(demo_data, "load_demo_volumes", lambda: demo_data.DemoVolumes(full.t1[box], full.t2[box], full.mask[box], full.affine))
    monkeypatch.setattr(demo, "MIN_ITERATIONS", 10**6)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--minutes", "0.02", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for direction in ("t1_to_t2", "t2_to_t1"):
        for method in ("model", "identity", "inverse_histogram"):
            assert set(m[direction][method]) >= {"psnr", "ssim", "mae", "psnr_3d", "ssim_3d", "mae_3d", "tp_error", "tp_ratio"}
            assert m[direction][method]["n"] == 24 and m[direction][method]["n_volumes"] == 1  # 24 slab slices, one volume
        assert m[direction]["inverse_histogram"]["psnr"] > m[direction]["identity"]["psnr"] + 1
        assert {r["slice"] for r in m[direction]["per_image"]} == set(m["test_slices"])  # only held-out slices scored
    assert m["n_test_slices"] == 24 and m["train_seconds"] > 0 and m["iterations"] >= 1
    rep = parse_report(out / "report.html")
    assert rep.tables == ["t1_to_t2", "t2_to_t1"]
    assert any(src.startswith("data:image/gif;base64,") for src in rep.imgs)  # progress across epochs
    text = " ".join(rep.text)
    assert "barely trained" in text and "3D SSIM" in text
    assert all(v in text for v in ("axial", "coronal", "sagittal"))
    # the translated volumes are written at native resolution on the input's grid, to open in a viewer
    ref = nib.load(out / "volumes" / "t2.nii.gz")
    fake = nib.load(out / "volumes" / "fake_t2.nii.gz")
    assert fake.shape == ref.shape and fake.get_fdata().std() > 0
    np.testing.assert_allclose(fake.affine, ref.affine)
    # ... each with its uncertainty map, scored on the held-out slabs and shown in the report's viewer
    umap = nib.load(out / "volumes" / "fake_t2_uncertainty.nii.gz")
    assert umap.shape == ref.shape and np.asarray(umap.dataobj).std() > 0
    np.testing.assert_allclose(umap.affine, ref.affine)
    assert 0 <= m["t1_to_t2"]["uncertainty"]["auroc"] <= 1 and "reliability" in m["t2_to_t1"]["uncertainty"]
    html = (out / "report.html").read_text()
    assert html.count('class="viewer"') == 2 and html.count('class="vol"') == 10


def test_evaluate_nifti_volumes(tmp_path):
    import nibabel as nib

    from tests.conftest import oblique_affine
    from tests.phantoms import volume_pair

    t1, t2 = volume_pair((36, 30, 12), seed=1)
    aff = oblique_affine()
    for name, data in (("ref.nii.gz", t2), ("pred.nii.gz", t2 * 0.9 + 20), ("input.nii.gz", t1)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), aff), tmp_path / name)
    nib.save(nib.Nifti1Image((t2 > 0).astype(np.uint8), aff), tmp_path / "mask.nii.gz")
    args = ["evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"),
            "--input", str(tmp_path / "input.nii.gz"), "--out", str(tmp_path / "ev")]
    assert main(args) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())["t1_to_t2"]
    assert m["model"]["n"] == 12  # one score per axial slice
    assert m["model"]["psnr"] > 30 and m["model"]["ssim"] > 0.95  # a linear rescale is undone by the per-volume normalisation
    assert m["model"]["n_volumes"] == 1 and m["model"]["ssim_3d"] > 0.95 and m["model"]["tp_ratio"] < 0.1  # whole-volume scores
    assert m["inverse_histogram"]["tp_ratio"] > m["model"]["tp_ratio"] and len(m["per_volume"]) == 1
    nib.save(nib.Nifti1Image(np.ones((36, 30, 5), np.uint8), aff), tmp_path / "mask.nii.gz")
    assert main(args) == 2


def test_score_crop_is_exact():
    """Scoring crops volumes to the mask's box plus the SSIM radius; the scores must equal whole-volume ones."""
    from mri_cyclegan.metrics import image_scores as score
    from mri_cyclegan.metrics import score as score_pair
    from mri_cyclegan.metrics import through_plane

    rng = np.random.default_rng(0)
    ref = rng.random((40, 36, 30))
    pred = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)
    mask = np.zeros(ref.shape, bool)
    mask[12:25, 10:22, 8:20] = True
    s = score_pair(pred, ref, mask, axis=2)
    whole = score(pred, ref, mask)
    for k in ("psnr", "ssim", "mae"):
        assert abs(s.volume[f"{k}_3d"] - whole[k]) < 1e-10, k
    assert abs(s.volume["tp_ratio"] - through_plane(pred, ref, 2, mask)["tp_ratio"]) < 1e-10
    assert [r["slice"] for r in s.slices] == list(range(8, 20))
    k = 10
    assert abs(s.slices[2]["ssim"] - score(pred[:, :, k], ref[:, :, k], mask[:, :, k])["ssim"]) < 1e-10
    means = s.means()  # the protocol's names: per-slice means and 3D values, never mixed
    assert means["psnr"] == pytest.approx(np.mean([r["psnr"] for r in s.slices])) and means["psnr_3d"] == s.volume["psnr_3d"]
    assert means["psnr"] != pytest.approx(means["psnr_3d"])


def test_evaluate_uncertainty_scores_and_viewer(tmp_path, capsys):
    import nibabel as nib

    sk = pytest.importorskip("sklearn.metrics")
    from tests.conftest import oblique_affine
    from tests.phantoms import volume_pair

    t1, t2 = volume_pair((36, 30, 12), seed=2)
    rng = np.random.default_rng(0)
    pred = t2 + rng.normal(0, 1, t2.shape) * np.where(np.arange(36)[:, None, None] > 18, 60.0, 5.0)  # one half much worse
    unc = np.abs(pred - t2) * rng.uniform(0.5, 1.5, t2.shape)  # informative but not exact
    aff = oblique_affine()
    for name, data in (("ref.nii.gz", t2), ("pred.nii.gz", pred), ("pred_uncertainty.nii.gz", unc), ("input.nii.gz", t1)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), aff), tmp_path / name)
    nib.save(nib.Nifti1Image((t2 > 0).astype(np.uint8), aff), tmp_path / "mask.nii.gz")
    args = ["evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"),
            "--input", str(tmp_path / "input.nii.gz"), "--out", str(tmp_path / "ev"), "--uncertainty"]
    assert main(args) == 0
    assert "uncertainty: AUROC" in capsys.readouterr().out
    u = json.loads((tmp_path / "ev" / "metrics.json").read_text())["t1_to_t2"]["uncertainty"]

    # the same numbers computed independently: each image in its own 0.5/99.5 window, the map in the prediction's units
    def window(x):
        lo, hi = np.percentile(x, (0.5, 99.5))
        return lo, hi

    (plo, phi), (rlo, rhi) = window(pred), window(t2)
    err = np.abs(np.clip((pred - plo) / (phi - plo), 0, 1) - np.clip((t2 - rlo) / (rhi - rlo), 0, 1))
    m = t2 > 0  # the --mask file
    expected = sk.roc_auc_score(err[m] > 0.1, unc[m] / (phi - plo))
    assert 0.6 < expected < 0.99 and u["auroc"] == pytest.approx(expected, abs=1e-4)
    assert len(u["reliability"]["mean_error"]) == 10 and u["per_image"][0]["name"] == "pred.nii.gz"
    html = (tmp_path / "ev" / "report.html").read_text()
    assert html.count('class="viewer"') == 1 and html.count('class="vol"') == 5  # input, translation, reference, error, uncertainty
    assert "AUROC" in html and "DecompressionStream" in html
    # a missing map is an input error, named
    (tmp_path / "pred_uncertainty.nii.gz").unlink()
    assert main(args) == 2
    assert "pred_uncertainty.nii.gz" in capsys.readouterr().err
