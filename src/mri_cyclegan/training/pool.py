"""History of generated images for the discriminators (Shrivastava et al.; reference pool size 50)."""

from __future__ import annotations

import torch


class ImagePool:
    """Returns, per image, either the new one or (p = 0.5, once full) a stored older one that it replaces."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0; got {size}")
        self.size = size
        self.generator = generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=self.generator).item())
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"rng": self.generator.get_state()}
        if self.images:
            state["images"] = torch.cat(self.images, 0).cpu().contiguous()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.generator.set_state(state["rng"])
        imgs = state.get("images")
        self.images = [] if imgs is None else [im.unsqueeze(0).to(device) for im in imgs]
