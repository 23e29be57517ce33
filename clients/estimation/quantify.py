"""Quantification: from predicted labels to label shares, corrected for misclassification.

Classify-and-count (CC) is biased whenever the activity mix differs from the mix the classifier
was trained on: with confusion matrix M (M[i, j] = P(predicted j | true i)) the expected predicted
shares are p = M^T pi. The adjusted estimator (ACC; the misclassification estimator of survey
statistics) solves p_hat = M^T pi for the true shares pi by least squares over the probability
simplex; PACC does the same with predicted probabilities instead of hard labels (Bella et al. 2010).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

SUM_WEIGHT = 1e3  # weight of the sum-to-one row in the constrained least squares


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Counts [true, predicted]."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).astype(np.float64)


def soft_confusion(y_true: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """Summed predicted probabilities [true, predicted]."""
    out = np.zeros((k, k))
    np.add.at(out, y_true, proba)
    return out


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """M from (possibly noisy) counts [..., K, K]: negative counts to 0, an empty row to the identity
    row (a label never seen among the labelled persons is taken as recognised, the only neutral choice)."""
    c = np.clip(counts, 0, None)
    rows = c.sum(axis=-1, keepdims=True)
    eye = np.eye(c.shape[-1])
    return np.where(rows > 0, c / np.where(rows > 0, rows, 1), eye)


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = np.nonzero(u * np.arange(1, len(v) + 1) > (css - 1))[0][-1]
    return np.maximum(v - (css[rho] - 1) / (rho + 1), 0)


def adjusted(p_hat: np.ndarray, m: np.ndarray) -> np.ndarray:
    """pi >= 0 with sum 1 minimising ||M^T pi - p_hat||^2 (a sum-to-one row of weight SUM_WEIGHT)."""
    k = len(p_hat)
    a = np.vstack([m.T, SUM_WEIGHT * np.ones((1, k))])
    b = np.concatenate([p_hat, [SUM_WEIGHT]])
    pi, _ = nnls(a, b)
    return pi / pi.sum() if pi.sum() > 0 else np.full(k, 1 / k)


def classify_count(p_hat: np.ndarray) -> np.ndarray:
    """CC: the predicted shares themselves (projected, since noisy sums may leave the simplex)."""
    return project_simplex(np.asarray(p_hat, dtype=np.float64))
