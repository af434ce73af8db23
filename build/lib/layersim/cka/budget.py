"""Memory and precision budgets of the chunked CKA computations.

Every module reads these as ``budget.NAME`` at call time rather than importing the values,
so one assignment (a test shrinking them to force many chunks, say) reaches all of them.
None of them changes a result beyond rounding; they trade memory for the number of steps.
"""

#: Bytes of temporaries one step of a chunked computation may allocate.
CHUNK_BYTES = 256 * 2**20
#: At most this many bytes of n×n RBF Gram matrices are held at once.
GRAM_BYTES = 2 * 2**30
#: A float32 product sums at most this many rows before being added in float64, which keeps
#: its rounding error within the 1e-6 contract of ``precision="exact"``.
MAX_F32_ROWS = 4096
#: Bound on the float64 temporaries of float64-accumulated reductions.
TEMP_BYTES = 64 * 2**20
