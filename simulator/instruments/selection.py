"""Which items an instrument administers when it is told to use fewer than its file holds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def fixed_subset(pools: Sequence[Sequence[T]], sizes: Sequence[int]) -> list[T]:
    """`sizes[i]` members of each pool, drawn in turn with one fixed seed, so every run, every
    stage and every seed of a sweep sees the same items (callers put them back in file order)."""
    rng = random.Random(0)
    return [member for pool, size in zip(pools, sizes) for member in rng.sample(list(pool), size)]
