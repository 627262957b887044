#!/usr/bin/python3
"""Derives and checks the Winograd F(4x4, 5x5) matrices of lib/nn/winograd.c.

Cook-Toom construction (Lavin & Gray 2016; the wincnn recipe) for F(m=4, r=5),
alpha = m + r - 1 = 8, with the interpolation points 0, 1, -1, 2, -2, 1/2,
-1/2 and infinity. For the 1-D correlation y_i = sum_k d_{i+k} g_k,
    y = AT [(G g) * (BT d)]
and the 2-D tile is the nesting Y = AT [(G g G^T) * (BT d BT^T)] AT^T.
This script solves for BT given AT and G, checks the identity exactly in
rationals, prints the matrices as C, and measures the float32 rounding of one
tile against float64. Run: /usr/bin/python3 lib/nn/winograd.py (needs sympy, numpy).
"""
import numpy as np
import sympy as sp

M, R = 4, 5
POINTS = [0, 1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2)]


def cook_toom(m, r, pts):
    a = m + r - 1
    AT = sp.zeros(m, a)
    for i in range(m):
        for j, p in enumerate(pts):
            AT[i, j] = sp.Rational(p) ** i
        AT[i, a - 1] = 1 if i == m - 1 else 0
    G = sp.zeros(a, r)
    for j, p in enumerate(pts):
        f = 1
        for l, q in enumerate(pts):
            if l != j:
                f *= sp.Rational(p) - sp.Rational(q)
        for k in range(r):
            G[j, k] = sp.Rational(p) ** k / f
    G[a - 1, r - 1] = 1
    BT = sp.Matrix(a, a, lambda j, n: sp.Symbol("b_%d_%d" % (j, n)))
    eqs = [sum(AT[i, j] * G[j, k] * BT[j, n] for j in range(a)) - (1 if n == i + k else 0)
           for i in range(m) for k in range(r) for n in range(a)]
    sol = sp.solve(eqs, list(BT), dict=True)
    BT = BT.subs(sol[0])
    BT = BT.subs({s: 0 for s in BT.free_symbols})
    return AT, G, BT


def check_exact(AT, G, BT, m, r):
    a = m + r - 1
    for i in range(m):
        for k in range(r):
            for n in range(a):
                v = sum(AT[i, j] * G[j, k] * BT[j, n] for j in range(a))
                assert v == (1 if n == i + k else 0), (i, k, n, v)


def c_matrix(name, Mx):
    def lit(x):
        x = sp.Rational(x)
        return "%d" % x.p if x.q == 1 else "%d.0f / %d" % (x.p, x.q)
    rows = ["    {" + ", ".join(lit(Mx[i, j]) for j in range(Mx.shape[1])) + "}," for i in range(Mx.shape[0])]
    return "static const float %s[%d][%d] = {\n%s\n};" % (name, Mx.shape[0], Mx.shape[1], "\n".join(rows))


def main():
    AT, G, BT = cook_toom(M, R, POINTS)
    check_exact(AT, G, BT, M, R)
    print("identity holds exactly for F(%d,%d) with points %s and infinity" % (M, R, POINTS))
    for name, Mx in (("WINO_BT", BT), ("WINO_G", G), ("WINO_AT", AT), ("WINO_A", AT.T), ("WINO_GT", G.T)):
        print(c_matrix(name, Mx))
    A, Gn, B = (np.array(x, dtype=np.float64) for x in (AT, G, BT))
    rng = np.random.default_rng(0)
    f = np.float32
    errs = []
    for _ in range(200):
        d = rng.standard_normal((8, 8))
        g = rng.standard_normal((5, 5))
        ref = np.array([[np.sum(d[i:i + 5, j:j + 5] * g) for j in range(4)] for i in range(4)])
        Y = A.astype(f) @ ((Gn.astype(f) @ g.astype(f) @ Gn.T.astype(f)) *
                           (B.astype(f) @ d.astype(f) @ B.T.astype(f))) @ A.T.astype(f)
        errs.append(np.abs(Y - ref).max() / np.abs(ref).max())
    print("float32 rounding of one tile, relative to its largest output: mean %.1e, max %.1e"
          % (np.mean(errs), np.max(errs)))


if __name__ == "__main__":
    main()
