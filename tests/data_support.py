"""Functions over numpy arrays for the data-plane tests (importable by workers)."""

from __future__ import annotations

import numpy as np


def make(count: int) -> np.ndarray:
    """``count`` float64s: 0, 1, 2, ..."""
    return np.arange(count, dtype=np.float64)


def double(values: np.ndarray) -> np.ndarray:
    return values * 2


def total(values: np.ndarray) -> float:
    return float(values.sum())


def nbytes(values: np.ndarray) -> int:
    return int(values.nbytes)


FUNCTIONS = (make, double, total, nbytes)
