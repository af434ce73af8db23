"""Where the biased estimator sits for representations that share nothing.

Biased linear CKA of two independent representations is not 0: for isotropic Gaussian features
of width ``d`` on ``n`` inputs it is about ``d / (n + d)`` (0.28 for MiniLM's 384 dimensions on
1,000 inputs; checked against simulation in the tests). Representations of lower effective rank
sit lower, so this is an upper reference for "unrelated", shown in the book's colour legends.
"""

from __future__ import annotations

__all__ = ["unrelated_floor"]


def unrelated_floor(n: int, width: int) -> float:
    """Biased linear CKA of two independent isotropic representations of `width` dimensions on
    `n` inputs, to leading order: ``width / (n + width)``.

    Parameters
    ----------
    n : int
        The number of inputs compared.
    width : int
        The representations' dimension (a model's hidden size).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a non-positive `n` or `width`.
    """
    if isinstance(n, bool) or isinstance(width, bool) or int(n) < 1 or int(width) < 1:
        raise ValueError(f"n and width must be positive integers; got n={n!r}, width={width!r}")
    return int(width) / (int(n) + int(width))
