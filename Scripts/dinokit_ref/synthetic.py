"""The deterministic synthetic input shared with DinoKit (TensorStore/SyntheticInput.swift).

Golden inputs at 518 or 644 pixels would be megabytes of random floats; instead a golden case may
name this generator and both sides build bit-identical inputs from a seed. Each value is
((state >> 24) - 128) / 64 for a 32-bit LCG state (Numerical Recipes constants), exactly
representable in float32, in [-2, 2)."""
import numpy as np


def lcg_values(seed: int, count: int) -> np.ndarray:
    out = np.empty(count, dtype=np.float32)
    state = seed & 0xFFFFFFFF
    # Vectorised in blocks would be faster; inputs are at most a few million values.
    a, c = 1664525, 1013904223
    vals = np.empty(count, dtype=np.uint32)
    for i in range(count):
        state = (state * a + c) & 0xFFFFFFFF
        vals[i] = state
    out[:] = ((vals >> 24).astype(np.int32) - 128).astype(np.float32) / np.float32(64.0)
    return out


def lcg_tensor(seed: int, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return lcg_values(seed, n).reshape(shape)
