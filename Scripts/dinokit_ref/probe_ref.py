"""Reference implementations for the probe: sklearn's LogisticRegression with scipy's final
objective, and DINOv2's weighted k-NN in NumPy; and, for the precision checks, row cosines and
features with seeded noise. Shared by Scripts/fixtures/probe.py, Scripts/probe-check,
Scripts/bench-probe and dinokit_ref/precision_task_peers.py."""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import _logistic


def fit_sklearn(X, y, max_iter, C=1.0):
    """sklearn's LogisticRegression (defaults but C and max_iter), plus scipy's final objective
    (`opt_res.fun`, sklearn's scaling), iteration count and message, captured by wrapping
    scipy.optimize.minimize as sklearn's module calls it."""
    captured = {}
    real = _logistic.optimize.minimize

    def spy(*args, **kwargs):
        res = real(*args, **kwargs)
        captured["fun"] = float(res.fun)
        captured["nit"] = int(res.nit)
        captured["message"] = str(res.message)
        return res

    _logistic.optimize.minimize = spy
    try:
        clf = LogisticRegression(C=C, max_iter=max_iter).fit(X, y)
    finally:
        _logistic.optimize.minimize = real
    assert captured["nit"] == int(clf.n_iter_[0])
    return clf, captured


def objective64(clf, X, y, C=1.0):
    """sklearn's scaled objective recomputed in float64 from the fitted (float32) coefficients."""
    X = X.astype(np.float64)
    W = clf.coef_.astype(np.float64)
    b = clf.intercept_.astype(np.float64)
    n = X.shape[0]
    z = X @ W.T + b
    if len(clf.classes_) == 2:
        t = (y == clf.classes_[1]).astype(np.float64)
        v = z[:, 0]
        loss = np.logaddexp(0, v) - t * v
    else:
        idx = np.searchsorted(clf.classes_, y)
        m = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
        loss = lse - z[np.arange(n), idx]
    return float(loss.mean() + 0.5 / (C * n) * (W * W).sum())


def knn_reference(train, train_labels, test, ks, T_):
    """DINOv2's weighted k-NN in NumPy. Returns predictions (len(ks), Q) and the smallest
    decision margin over all queries and ks, in similarity units: how far the similarities must
    move to change a decision (the gap at the k boundary between neighbours of different
    classes, or the relative class-score gap times T)."""
    def normalize(x):
        x = x.astype(np.float32)
        norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
        return x / np.maximum(norm, np.float32(1e-12))[:, None]

    classes = np.unique(train_labels)
    cls_index = np.searchsorted(classes, train_labels)
    tr, te = normalize(train), normalize(test)
    # Cosine similarities of the float32 unit vectors, in float64: exact products, sums rounded
    # at 1e-16, so the ranking does not depend on a BLAS's float32 summation order.
    sims = te.astype(np.float64) @ tr.astype(np.float64).T
    kmax = min(max(ks), tr.shape[0])
    preds = np.zeros((len(ks), te.shape[0]), dtype=np.int64)
    margin = np.inf
    for q in range(te.shape[0]):
        s = sims[q]
        order = np.argsort(-s, kind="stable")  # ties: lower training index first
        top = order[:kmax]
        w = np.exp((s[top] - s[top[0]]) / T_)
        w /= w.sum()
        for j, k in enumerate(ks):
            k = min(k, tr.shape[0])
            scores = np.zeros(len(classes))
            np.add.at(scores, cls_index[top[:k]], w[:k])
            best = int(np.argmax(scores))
            preds[j, q] = classes[best]
            srt = np.sort(scores)[::-1]
            if len(srt) > 1:
                # In similarity units: weights move by a factor exp(delta / T) when the
                # similarities move by delta, so a relative score gap g needs delta ~ g * T.
                margin = min(margin, (srt[0] - srt[1]) / max(srt[0], 1e-300) * T_)
            if k < len(order):
                # A swap across the k boundary matters only between different classes.
                if cls_index[order[k - 1]] != cls_index[order[k]]:
                    margin = min(margin, float(s[order[k - 1]]) - float(s[order[k]]))
    return preds, margin


def row_cosines(a, b):
    """Cosine of each row of `a` with the same row of `b`, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def with_noise(features, rel, seed):
    """`features` plus seeded isotropic Gaussian noise of norm ~rel * |row| per row (float32): its
    cosine with the original is ~1 / sqrt(1 + rel^2)."""
    noise = np.random.default_rng(seed).normal(size=features.shape)
    return (features + noise * rel * np.linalg.norm(features, axis=1, keepdims=True) / np.sqrt(features.shape[1])).astype(np.float32)
