"""mri-cyclegan: unpaired T1 <-> T2 brain MRI translation with CycleGAN."""

__version__ = "0.1.0"

from .directions import DIRECTIONS, Contrast, Direction  # noqa: E402,F401  (leaf module: no heavy imports)
