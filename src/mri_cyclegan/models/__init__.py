"""Generators, PatchGAN discriminator and the CycleGAN container."""

from .cyclegan import CycleGAN, build_generator
from .networks import HistogramPrior, PatchDiscriminator, ResnetGenerator, UnetGenerator

__all__ = ["CycleGAN", "HistogramPrior", "PatchDiscriminator", "ResnetGenerator", "UnetGenerator", "build_generator"]
