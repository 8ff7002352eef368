"""An interactive slice viewer inside the self-contained report: axial, coronal and sagittal slices of the input, the
translation, the reference, |error| and the uncertainty side by side, with sliders and a shared crosshair.

Plain JavaScript, no network, no server: each panel is a canonical (X, Y, Z) uint8 volume, deflated and base64-encoded
in the page, inflated by the browser's own ``DecompressionStream``. A link ``report.html#<viewer id>=x,y,z`` opens a
viewer at that crosshair (through the sliders' own input handlers).
"""

from __future__ import annotations

import base64
import html
import zlib
from dataclasses import dataclass

import numpy as np

ERROR_VMAX = 0.25  # |error| colour scale of the pictures and the viewer ([0, 1] units)


def display_max(values: np.ndarray) -> float:
    """The top of an uncertainty map's colour scale: the 99th percentile of its (in-mask) values, 1 when that is 0."""
    top = float(np.percentile(values, 99)) if np.size(values) else 0.0
    return top if top > 0 else 1.0


@dataclass
class Viewer:
    """One volume for the report's slice viewer: canonical (X, Y, Z) uint8 panels, cropped to the mask (plus a margin)
    and subsampled to at most ``max_side`` voxels per axis, each with its label and colour map."""

    name: str
    shape: tuple[int, int, int]
    step: int
    panels: list[tuple[str, str, np.ndarray]]  # (label, "gray" | "magma", uint8 volume)

    @classmethod
    def of(cls, name: str, mask: np.ndarray, input: np.ndarray | None, prediction: np.ndarray, reference: np.ndarray | None,
           uncertainty: np.ndarray | None, max_side: int = 128, margin: int = 4) -> Viewer:
        idx = np.argwhere(mask) if mask.any() else np.argwhere(np.ones_like(mask))
        lo, hi = np.maximum(idx.min(0) - margin, 0), np.minimum(idx.max(0) + margin + 1, mask.shape)
        step = int(np.ceil(max(hi - lo) / max_side))
        box = tuple(slice(int(a), int(b), step) for a, b in zip(lo, hi))

        def u8(x: np.ndarray, vmax: float = 1.0) -> np.ndarray:
            return np.clip(np.rint(np.asarray(x, np.float64)[box] / vmax * 255), 0, 255).astype(np.uint8)

        panels = []
        if input is not None:
            panels.append(("input", "gray", u8(input)))
        panels.append(("translation", "gray", u8(prediction)))
        if reference is not None:
            panels += [("reference", "gray", u8(reference)), (f"|error| (0–{ERROR_VMAX})", "magma", u8(np.abs(prediction - reference) * mask, ERROR_VMAX))]
        if uncertainty is not None:
            vmax = display_max(uncertainty[mask] if mask.any() else uncertainty)
            panels.append((f"uncertainty (0–{vmax:.3g})", "magma", u8(uncertainty, vmax)))
        shape = panels[0][2].shape
        return cls(name, (int(shape[0]), int(shape[1]), int(shape[2])), step, panels)


VIEWS = ("axial", "coronal", "sagittal")  # rows of the viewer; the sliders move x (sagittal), y (coronal), z (axial)


def _b64_deflate(vol: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(vol, np.uint8).tobytes(), 6)).decode("ascii")


def viewer_html(v: Viewer, vid: str) -> str:
    """The markup of one viewer (the script, :func:`viewer_script`, is added once per page)."""
    vid = "viewer-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in vid)
    x, y, z = v.shape
    zoom = max(1, 256 // max(x, y, z))
    sliders = "".join(
        f'<label>{name} <input type="range" class="slider" data-axis="{ax}" min="0" max="{n - 1}" value="{n // 2}">'
        f'<output>{n // 2}</output></label> '
        for ax, (name, n) in enumerate((("x (sagittal)", x), ("y (coronal)", y), ("z (axial)", z))))
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in v.panels) + "</tr>"
    rows = "".join(
        f"<tr><th>{view}</th>" + "".join(f'<td><canvas data-view="{r}" data-panel="{p}" data-zoom="{zoom}"></canvas></td>'
                                        for p in range(len(v.panels))) + "</tr>"
        for r, view in enumerate(VIEWS))
    data = "".join(f'<script type="application/octet-stream" class="vol" data-cmap="{cmap}">{_b64_deflate(vol)}</script>'
                   for _, cmap, vol in v.panels)
    step = f", 1 voxel in {v.step} along each axis" if v.step > 1 else ", native resolution"
    return (f'<div class="viewer" id="{vid}" data-shape="{x},{y},{z}"><h3>{html.escape(v.name)}: slice viewer '
            f'({x}×{y}×{z} voxels around the mask{step}; click a picture to move the crosshair)</h3>'
            f'<div class="controls">{sliders}</div><table class="viewer-grid">{head}{rows}</table>{data}</div>')


def _magma() -> str:
    import matplotlib

    rgb = (matplotlib.colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(int)
    return ",".join(str(int(c)) for c in rgb.ravel())


def viewer_script() -> str:
    return _VIEWER_JS.replace("__MAGMA__", _magma())


_VIEWER_JS = r"""
(function () {
  const MAGMA = [__MAGMA__];
  async function inflate(b64) {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  async function setup(root) {
    const [X, Y, Z] = root.dataset.shape.split(",").map(Number);
    const vols = await Promise.all([...root.querySelectorAll("script.vol")].map(
      async (s) => ({ data: await inflate(s.textContent.trim()), cmap: s.dataset.cmap })));
    const pos = [X >> 1, Y >> 1, Z >> 1];
    const size = [X, Y, Z];
    const sliders = [...root.querySelectorAll("input.slider")];
    const canvases = [...root.querySelectorAll("canvas")];
    // view -> [width axis, height axis (drawn flipped: anterior / superior up), slice axis]
    const AXES = [[0, 1, 2], [0, 2, 1], [1, 2, 0]];
    function at(vol, i, j, k) { return vol.data[(i * Y + j) * Z + k]; }
    function draw() {
      for (const c of canvases) {
        const [wa, ha, sa] = AXES[+c.dataset.view];
        const vol = vols[+c.dataset.panel];
        const W = size[wa], H = size[ha], zoom = +c.dataset.zoom;
        c.width = W; c.height = H;
        c.style.width = W * zoom + "px"; c.style.height = H * zoom + "px";
        const ctx = c.getContext("2d");
        const img = ctx.createImageData(W, H);
        const p = [0, 0, 0];
        p[sa] = pos[sa];
        for (let r = 0; r < H; r++) {
          p[ha] = H - 1 - r;
          for (let col = 0; col < W; col++) {
            p[wa] = col;
            const v = at(vol, p[0], p[1], p[2]);
            const o = 4 * (r * W + col);
            if (vol.cmap === "magma") { img.data[o] = MAGMA[3 * v]; img.data[o + 1] = MAGMA[3 * v + 1]; img.data[o + 2] = MAGMA[3 * v + 2]; }
            else { img.data[o] = img.data[o + 1] = img.data[o + 2] = v; }
            img.data[o + 3] = 255;
          }
        }
        ctx.putImageData(img, 0, 0);
        ctx.fillStyle = "rgba(0, 255, 0, 0.55)";
        ctx.fillRect(pos[wa], 0, 1, H);
        ctx.fillRect(0, H - 1 - pos[ha], W, 1);
      }
      sliders.forEach((s) => { s.value = pos[+s.dataset.axis]; s.nextElementSibling.textContent = s.value; });
      root.dataset.position = pos.join(",");
    }
    sliders.forEach((s) => s.addEventListener("input", () => { pos[+s.dataset.axis] = +s.value; draw(); }));
    canvases.forEach((c) => c.addEventListener("click", (e) => {
      const [wa, ha] = AXES[+c.dataset.view];
      const rect = c.getBoundingClientRect();
      const col = Math.floor((e.clientX - rect.left) / rect.width * c.width);
      const row = Math.floor((e.clientY - rect.top) / rect.height * c.height);
      pos[wa] = Math.min(size[wa] - 1, Math.max(0, col));
      pos[ha] = Math.min(size[ha] - 1, Math.max(0, c.height - 1 - row));
      draw();
    }));
    draw();
    for (const part of decodeURIComponent(location.hash.slice(1)).split("&")) {  // #<viewer id>=x,y,z
      const [id, xyz] = part.split("=");
      if (id === root.id && xyz) {
        xyz.split(",").map(Number).forEach((v, i) => {
          if (Number.isFinite(v) && sliders[i]) { sliders[i].value = v; sliders[i].dispatchEvent(new Event("input")); }
        });
      }
    }
    root.dataset.ready = "1";
  }
  document.querySelectorAll(".viewer").forEach((root) => setup(root).catch((e) => {
    root.insertAdjacentHTML("beforeend", "<p class='note'>This browser cannot show the viewer: " + e + "</p>");
  }));
})();
"""
