"""The one check every vector passes before anyone stores or compares it.

A model with damaged weights, a dtype that overflowed, or a server that answers with
the wrong rows would otherwise hand out vectors that look like any others: Chroma
stores them, a search ranks them, and nothing says why results went wrong.  The
engine (every in-process vector) and the embedders' shared base (every adapter's,
remote ones included) call :func:`check_vectors` on what they return.
"""

from __future__ import annotations

import numpy as np

from .errors import VectorError

__all__ = ["NORM_TOLERANCE", "check_vectors"]

#: How far from 1 a normalised vector's length may be (bf16 pooling, float32 rounding).
NORM_TOLERANCE = 1e-3


def check_vectors(
    vectors: np.ndarray, *, rows: int, dim: int | None, normalized: bool, source: str
) -> np.ndarray:
    """``vectors`` as float32 if they are ``rows`` finite vectors of width ``dim`` (unit length when
    ``normalized``); else a :class:`VectorError` naming ``source`` and the first bad row."""
    if vectors.ndim != 2 or vectors.shape[0] != rows:
        raise VectorError(f"{source} gave vectors of shape {vectors.shape} for {rows} texts")
    if dim is not None and vectors.shape[1] != dim:
        raise VectorError(f"{source} gave {vectors.shape[1]}-wide vectors where {dim}-wide ones belong")
    if vectors.dtype.kind not in "fi":
        raise VectorError(f"{source} gave vectors of {vectors.dtype}, not numbers")
    vectors = np.asarray(vectors, dtype=np.float32)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise VectorError(f"{source} gave non-finite vectors (NaN or infinity) for texts {bad[:10].tolist()}")
    if normalized and rows:
        norms = np.linalg.norm(vectors, axis=1)
        off = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
        if off.size:
            first = int(off[0])
            raise VectorError(
                f"{source} gave vectors that should be unit length but are not "
                f"(text {first}: length {norms[first]:.6g}; {off.size} of {rows} such)"
            )
    return vectors
