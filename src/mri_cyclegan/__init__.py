"""mri-cyclegan: unpaired T1 <-> T2 brain MRI translation with CycleGAN."""

__version__ = "0.1.0"

DIRECTIONS = ("t1_to_t2", "t2_to_t1")
