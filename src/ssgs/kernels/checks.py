"""Argument checks the kernel modules share: integers, real arrays and seeds.

Each returns the argument in the form the C kernels take, or raises a
``ValueError`` naming it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["positive_int", "real_array", "seed"]


def positive_int(name, value, minimum=1) -> int:
    """``value`` as an int, checked to be an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def real_array(name, x, ndim, dtypes=(np.float64,), allow_neginf=False, shape_doc="",
               check_finite=True):
    """``x`` as a C-contiguous array of one of ``dtypes`` (the first by default).

    Parameters
    ----------
    name : str
        The argument's name, for messages.
    x : array_like
        Real numbers (booleans and integers are converted).
    ndim : int
        Number of dimensions ``x`` must have.
    dtypes : tuple of dtype
        Kept as they are; any other dtype becomes ``dtypes[0]``.
    allow_neginf : bool
        Accept -inf (log-probabilities); NaN and +inf are still refused.
    shape_doc : str
        The expected shape, for messages.
    check_finite : bool
        False leaves the check of the values to the caller.

    Raises
    ------
    ValueError
        For a non-real dtype, the wrong number of dimensions, or NaN / inf
        (the message names the first bad index).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        doc = f" {shape_doc}" if shape_doc else ""
        raise ValueError(f"{name} must be {ndim}-D{doc}, got shape {arr.shape}")
    dtype = arr.dtype if arr.dtype in dtypes else dtypes[0]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not check_finite or np.isfinite(arr).all():
        return arr
    bad = np.isnan(arr) | (arr == np.inf) if allow_neginf else ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN or +inf" if allow_neginf else "NaN or inf"
        raise ValueError(f"{name} contains {what} (first at index {where})")
    return arr


def seed(value) -> int:
    """``value`` as an int, checked to be an integer in [0, 2**64)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**64), got {value!r}")
    if not 0 <= int(value) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {value}")
    return int(value)
