"""scikit-learn's handwritten digits (1,797 8x8 scans shipped inside the library, 10 classes) as a
CIFAR-format image set: the one labelled set of real images available here without a download.

Each scan's 17 grey levels (0..16) become uint8 (v * 255 / 16, rounded), the 8x8 grid is blown up
to 32x32 by repeating each pixel 4x4 and copied to the three channels, rows in CIFAR's
channel-planar order. A seeded permutation splits it: TEST_COUNT test images (one image is 0.1
accuracy point), the rest but a remainder to make 5 equal training batches.

`placed(rows, shifts)` moves each image by whole pixels (zero fill: the scans' background is 0), the
augmentation the model is trained with and the placements the probe set holds: a digit's class
does not depend on where it sits, so a test set of several placements per held-out scan measures
accuracy in finer steps (one image of 10,000 is 0.01 point) on images of the training distribution.
"""
import numpy as np

SEED = 20261206
TEST_COUNT = 1000
REACH = 2  # pixels each way: the training augmentation's and the probe set's shifts
# The probe set: each training scan at 5 placements, each held-out scan at 10 (one test image is
# 0.01 point), drawn with PLACEMENT_SEED + 1 and PLACEMENT_SEED.
TRAIN_PLACEMENTS, TEST_PLACEMENTS, PLACEMENT_SEED = 5, 10, 20261207
NAMES = [f"digit-{d}".encode() for d in range(10)]


def digits_split():
    """((train rows, train labels), (test rows, test labels)): rows (N, 3072) uint8."""
    from sklearn.datasets import load_digits

    d = load_digits()
    grey = np.rint(d.images * (255 / 16)).astype(np.uint8)
    big = np.kron(grey, np.ones((4, 4), dtype=np.uint8))  # (N, 32, 32)
    rows = np.repeat(big[:, None], 3, axis=1).reshape(len(big), -1)
    order = np.random.default_rng(SEED).permutation(len(rows))
    train_count = (len(rows) - TEST_COUNT) // 5 * 5
    tr, te = order[:train_count], order[train_count:train_count + TEST_COUNT]
    labels = d.target.astype(np.int64)
    return (rows[tr], labels[tr]), (rows[te], labels[te])


def shift_rows(rows, dx, dy):
    """CIFAR rows (N, 3072) moved by (dx, dy) pixels, right and down positive, zero fill."""
    im = rows.reshape(-1, 3, 32, 32)
    out = np.zeros_like(im)
    src_y, dst_y = (slice(0, 32 - dy), slice(dy, 32)) if dy >= 0 else (slice(-dy, 32), slice(0, 32 + dy))
    src_x, dst_x = (slice(0, 32 - dx), slice(dx, 32)) if dx >= 0 else (slice(-dx, 32), slice(0, 32 + dx))
    out[:, :, dst_y, dst_x] = im[:, :, src_y, src_x]
    return out.reshape(len(rows), -1)


def placements(count, reach, seed):
    """(0, 0) and count - 1 seeded shifts with |dx|, |dy| <= reach."""
    rng = np.random.default_rng(seed)
    return [(0, 0)] + [tuple(int(v) for v in rng.integers(-reach, reach + 1, 2)) for _ in range(count - 1)]


def placed(rows, labels, shifts):
    """Every row at every shift in `shifts` (shift-major), labels repeated to match."""
    return np.concatenate([shift_rows(rows, dx, dy) for dx, dy in shifts]), np.tile(labels, len(shifts))


def probe_set():
    """The probe's set on the split: every training scan at TRAIN_PLACEMENTS placements and every
    held-out one at TEST_PLACEMENTS (the original and seeded shifts): ((rows, labels), (rows,
    labels)), 3,975 training and 10,000 test images."""
    (tr, ytr), (te, yte) = digits_split()
    return (placed(tr, ytr, placements(TRAIN_PLACEMENTS, REACH, PLACEMENT_SEED + 1)),
            placed(te, yte, placements(TEST_PLACEMENTS, REACH, PLACEMENT_SEED)))
