#!/usr/bin/python3
"""Fit the expm1 polynomial of core/tensor/vmath.c: expm1(r) = r + r^2 q(r)
with q(r) = 0.5 + c1 r + ... + c_deg r^deg on |r| <= ln2/2 (+ slack for the
Cody-Waite reduction), minimizing the maximum *relative* error of expm1
(weighted least squares on Chebyshev nodes, refined by Lawson's iteration
toward the minimax solution), then rounds the coefficients to float.

    /usr/bin/python3 bench/fit_expm1.py [deg]      (default 4; needs numpy, mpmath)

The whole float implementation is then checked over all 2^32 inputs by
`build/bench/expm1_check 1` (<= 2 ulp)."""
import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 40
A_MAX = 0.3466 + 2e-4  # ln2/2 = 0.34657...
deg = int(sys.argv[1]) if len(sys.argv) > 1 else 4
n = 4000
xs = np.cos(np.pi * (np.arange(n) + 0.5) / n) * A_MAX
q_true = np.array([float((mp.expm1(mp.mpf(x)) - mp.mpf(x)) / mp.mpf(x) ** 2) for x in xs])
e_true = np.array([float(mp.expm1(mp.mpf(x))) for x in xs])
basis = np.vander(xs, deg, increasing=True) * xs[:, None]  # c1 r + ... + c_deg r^deg
wrel = np.abs(xs ** 2 / e_true)  # error of q -> relative error of expm1
w = np.ones(n)
for _ in range(300):
    sw = np.sqrt(w) * wrel
    c, *_ = np.linalg.lstsq(basis * sw[:, None], (q_true - 0.5) * sw, rcond=None)
    err = np.abs((basis @ c + 0.5 - q_true) * wrel)
    w = w * err
    w /= w.sum()
cf = np.array([float(np.float32(x)) for x in c])
errf = np.abs((basis @ cf + 0.5 - q_true) * wrel).max()
print(f"degree {deg}: max relative error {err.max() / 2**-24:.4f} x 2^-24, "
      f"{errf / 2**-24:.4f} x 2^-24 with float coefficients")
print("Horner order (highest first):")
for x in cf[::-1]:
    print(f"  {float(x).hex().replace('0000000p', 'p')}f")
print("  0.5f")
