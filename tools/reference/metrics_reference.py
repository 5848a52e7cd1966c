#!/usr/bin/env python3
"""Expected numbers of tests/MvqNative.Tests/Metrics/MetricsTests.cs, computed with numpy/scipy.
The inputs are closed-form (no random generator), so the C# test builds the same arrays.
Run: /usr/bin/python3 tools/reference/metrics_reference.py"""
import numpy as np
from scipy import linalg


def real_set(n=40, d=5):
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    return (np.sin(0.37 * i * (j + 1) + 1.1 * j) + 0.1 * j).astype(np.float32)


def fake_set(n=40, d=5):
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    return (1.3 * np.cos(0.23 * i * (j + 2) + 0.5 * j) + 0.05 * i / n).astype(np.float32)


def fid(a, b):
    a = a.astype(np.float64); b = b.astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def mmd2u(x, y):
    x = x.astype(np.float64); y = y.astype(np.float64)
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2)


def sym(n=6):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = np.cos(0.9 * i * j + 0.3 * (i + j)) + (i == j) * (2.0 + i)
    return (a + a.T) / 2


def prd(ref, ev, angles=1001):
    eps = 1e-10
    slopes = np.tan(np.linspace(eps, np.pi / 2 - eps, num=angles))[:, None]
    p = np.minimum(ref[None, :] * slopes, ev[None, :]).sum(axis=1)
    r = p / slopes[:, 0]
    return np.clip(p, 0, 1), np.clip(r, 0, 1)


def fbeta(p, r, beta=8, eps=1e-10):
    return (1 + beta ** 2) * p * r / (beta ** 2 * p + r + eps)


if __name__ == "__main__":
    a, b = real_set(), fake_set()
    print("fid", repr(fid(a, b)))
    print("fid_self", repr(fid(a, a)))
    print("mmd2u", repr(mmd2u(a, b)))
    s = sym()
    w = linalg.eigh(s, eigvals_only=True)
    print("eigvals", [repr(float(v)) for v in w])
    spd = s @ s.T + np.eye(6)
    r = linalg.sqrtm(spd).real
    print("sqrt_spd_row0", [repr(float(v)) for v in r[0]])
    print("sqrt_spd_trace", repr(float(np.trace(r))))
    ref = np.array([0.1, 0.2, 0.3, 0.4, 0.0]); ev = np.array([0.25, 0.25, 0.25, 0.0, 0.25])
    p, rc = prd(ref, ev)
    print("prd_f8", repr(float(fbeta(p, rc).max())), "prd_f1_8", repr(float(fbeta(rc, p).max())))
    print("prd_p500_r500", repr(float(p[500])), repr(float(rc[500])))
