"""A faithful, condensed replica of the reference CycleGAN's training path (junyanz/pytorch-CycleGAN-and-pix2pix:
models/networks.py ResnetGenerator + NLayerDiscriminator, models/cycle_gan_model.py optimize_parameters,
data/unaligned_dataset.py + base_dataset.get_transform, util/image_pool.py), 1 channel, fp32, NCHW, so that
our trainer can be timed against it on the same machine, at the same work. Used by reference_parity.py.

    python benchmarks/reference_replica.py --t1 DIR --t2 DIR --size 96 --ngf 32 --n-blocks 6 --batch 4 --iters 240
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


# ------------------------------------------------------------------ models/networks.py
def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(ngf: int, n_blocks: int) -> nn.Module:
    norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(1, ngf, 7, bias=True), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2**i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=True), norm(ngf * m * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=True), norm(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Tanh()]
    g = nn.Sequential(*layers)
    g.apply(_init)
    return g


def n_layer_discriminator(ndf: int = 64, n_layers: int = 3) -> nn.Module:
    norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
    seq = [nn.Conv2d(1, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
    d = nn.Sequential(*seq)
    d.apply(_init)
    return d


# ------------------------------------------------------------------ util/image_pool.py
class ImagePool:
    def __init__(self, size: int) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                tmp = self.images[i].clone()
                self.images[i] = image
                out.append(tmp)
            else:
                out.append(image)
        return torch.cat(out, 0)


# ------------------------------------------------------------------ data/unaligned_dataset.py (grayscale, resize, crop, flip)
class Unaligned(torch.utils.data.Dataset):
    def __init__(self, t1: Path, t2: Path, load: int, crop: int) -> None:
        self.a = sorted(p for p in Path(t1).iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif", ".tiff"))
        self.b = sorted(p for p in Path(t2).iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif", ".tiff"))
        self.load, self.crop = load, crop

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def _tf(self, path: Path) -> torch.Tensor:
        img = Image.open(path).convert("L").resize((self.load, self.load), Image.BICUBIC)
        x, y = random.randint(0, self.load - self.crop), random.randint(0, self.load - self.crop)
        img = img.crop((x, y, x + self.crop, y + self.crop))
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        t = torch.from_numpy(np.asarray(img, np.float32) / 255.0)[None]
        return (t - 0.5) / 0.5

    def __getitem__(self, i: int):
        return self._tf(self.a[i % len(self.a)]), self._tf(self.b[random.randint(0, len(self.b) - 1)])


# ------------------------------------------------------------------ models/cycle_gan_model.py
class ReferenceCycleGAN:
    def __init__(self, ngf: int, n_blocks: int, lambda_identity: float = 0.5, lam: float = 10.0, pool: int = 50) -> None:
        self.g_a, self.g_b = resnet_generator(ngf, n_blocks), resnet_generator(ngf, n_blocks)
        self.d_a, self.d_b = n_layer_discriminator(), n_layer_discriminator()
        self.opt_g = torch.optim.Adam(list(self.g_a.parameters()) + list(self.g_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(list(self.d_a.parameters()) + list(self.d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
        self.pool_a, self.pool_b = ImagePool(pool), ImagePool(pool)
        self.lam, self.lam_id = lam, lambda_identity
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()

    def gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        return self.mse(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    @staticmethod
    def set_requires_grad(nets, flag: bool) -> None:
        for n in nets:
            for p in n.parameters():
                p.requires_grad = flag

    def backward_d(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> None:
        loss = (self.gan(d(real), True) + self.gan(d(fake.detach()), False)) * 0.5
        loss.backward()

    def optimize_parameters(self, real_a: torch.Tensor, real_b: torch.Tensor) -> None:
        fake_b = self.g_a(real_a)
        rec_a = self.g_b(fake_b)
        fake_a = self.g_b(real_b)
        rec_b = self.g_a(fake_a)
        self.set_requires_grad([self.d_a, self.d_b], False)
        self.opt_g.zero_grad()
        loss_idt = 0.0
        if self.lam_id > 0:
            loss_idt = self.l1(self.g_a(real_b), real_b) * self.lam * self.lam_id + self.l1(self.g_b(real_a), real_a) * self.lam * self.lam_id
        loss_g = (self.gan(self.d_a(fake_b), True) + self.gan(self.d_b(fake_a), True)
                  + self.l1(rec_a, real_a) * self.lam + self.l1(rec_b, real_b) * self.lam + loss_idt)
        loss_g.backward()
        self.opt_g.step()
        self.set_requires_grad([self.d_a, self.d_b], True)
        self.opt_d.zero_grad()
        self.backward_d(self.d_a, real_b, self.pool_b.query(fake_b))
        self.backward_d(self.d_b, real_a, self.pool_a.query(fake_a))
        self.opt_d.step()

    def save(self, path: Path) -> None:
        torch.save({k: m.state_dict() for k, m in (("G_A", self.g_a), ("G_B", self.g_b), ("D_A", self.d_a), ("D_B", self.d_b))}, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--t1", required=True)
    ap.add_argument("--t2", required=True)
    ap.add_argument("--out", default="/tmp/reference_replica")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--load", type=int, default=0, help="load size (default = size: resize, no crop margin)")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--n-blocks", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=240)
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers (reference default --num_threads 4)")
    ap.add_argument("--save-every-epochs", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    random.seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = Unaligned(Path(args.t1), Path(args.t2), args.load or args.size, args.size)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=False)
    model = ReferenceCycleGAN(args.ngf, args.n_blocks)
    it, epoch, step_times = 0, 0, []
    while it < args.iters:
        epoch += 1
        for a, b in loader:
            s = time.perf_counter()
            model.optimize_parameters(a, b)
            step_times.append(time.perf_counter() - s)
            it += 1
            if it >= args.iters:
                break
        if epoch % args.save_every_epochs == 0:
            model.save(out / f"{epoch}_net.pth")
        model.save(out / "latest_net.pth")
    wall = time.perf_counter() - t0
    print(f"RESULT wall_s={wall:.2f} iters={it} epochs={epoch} median_step_s={float(np.median(step_times)):.4f} sum_step_s={sum(step_times):.2f}")


if __name__ == "__main__":
    main()
