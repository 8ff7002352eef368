"""The two contrasts and the two translation directions: one name per concept.

Both are ``StrEnum``s, so ``Direction.T1_TO_T2 == "t1_to_t2"``: they are the keys of ``metrics.json``, the column
prefixes of ``val.csv`` and the tensor-name prefixes of checkpoints, unchanged, and code never slices a string to
find a contrast.
"""

from __future__ import annotations

from enum import StrEnum


class Contrast(StrEnum):
    T1 = "t1"
    T2 = "t2"

    @property
    def bids_suffix(self) -> str:
        """The BIDS suffix of an anatomical image of this contrast: ``T1w`` / ``T2w``."""
        return {Contrast.T1: "T1w", Contrast.T2: "T2w"}[self]

    @property
    def label(self) -> str:
        """For people: ``T1`` / ``T2``."""
        return self.value.upper()


class Direction(StrEnum):
    T1_TO_T2 = "t1_to_t2"
    T2_TO_T1 = "t2_to_t1"

    @property
    def source(self) -> Contrast:
        return Contrast.T1 if self is Direction.T1_TO_T2 else Contrast.T2

    @property
    def target(self) -> Contrast:
        return Contrast.T2 if self is Direction.T1_TO_T2 else Contrast.T1

    @property
    def reverse(self) -> Direction:
        return Direction.T2_TO_T1 if self is Direction.T1_TO_T2 else Direction.T1_TO_T2

    @property
    def label(self) -> str:
        """For people: ``T1 → T2``."""
        return f"{self.source.label} → {self.target.label}"

    @classmethod
    def parse(cls, text: str | Direction) -> Direction:
        """``t1_to_t2``, ``t1-to-t2`` or ``T1_TO_T2`` (any case) -> the Direction; ValueError otherwise."""
        try:
            return cls(str(text).lower().replace("-", "_"))
        except ValueError:
            raise ValueError(f"direction must be one of {', '.join(d.value for d in cls)} (or with dashes); got {text!r}") from None

    @classmethod
    def between(cls, source: Contrast | str, target: Contrast | str) -> Direction:
        return cls(f"{Contrast(source).value}_to_{Contrast(target).value}")


DIRECTIONS: tuple[Direction, ...] = tuple(Direction)
