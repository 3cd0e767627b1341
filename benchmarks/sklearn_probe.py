"""scikit-learn's LogisticRegression on the features bench_probe writes.

    python benchmarks/sklearn_probe.py <probe.safetensors> <lambda> <grid,of,lambdas> <rounds>
The single fit runs `rounds` times on the float32 features as loaded (C
order: scikit-learn 1.9 fits float32 without a copy) and on a float64 copy
made once outside the timed fits (`convert_seconds=`); the faster input
(`input=`) is the peer's for everything after: `seconds=`, and the grid,
also run `rounds` times (`grid_seconds=`, comma-separated). The float64
single fit's `coef=`, `intercept=` and `objective=` (class-balanced mean
log-loss + lambda / 2 * ||w||^2, in float64) are printed for the caller to
compare. Then the sweep-shaped workload: for
each permutation in `perms`, one probe per budget on its first `budget`
rows (`sweep_seconds=`, `sweep_aurocs=`), and the budgets up to 1,024 at
tol 1e-10 (`tight_aurocs=`). Threads follow OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS, which the caller sets.
"""
import os
import sys
import time

import numpy as np
import sklearn
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

t = load_file(sys.argv[1])
lam = float(sys.argv[2])
grid = [float(g) for g in sys.argv[3].split(",")]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
x32 = np.ascontiguousarray(t["x_train"])
start = time.perf_counter()
x64 = np.ascontiguousarray(x32, dtype=np.float64)
convert_secs = time.perf_counter() - start
y = t["y_train"].astype(int)
n = len(y)
x = x64


def fit(lmb, rows=None):
    xs, ys = (x, y) if rows is None else (x[rows], y[rows])
    clf = LogisticRegression(C=1.0 / (lmb * len(ys)), class_weight="balanced", max_iter=1000, tol=1e-4)
    return clf.fit(xs, ys)


def objective(w, b):
    z = x64 @ w + b
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    pos = y.sum()
    cw = np.where(y == 1, n / (2 * pos), n / (2 * (n - pos)))
    return float((cw * loss).mean() + lam / 2 * (w @ w))


threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
by_input = {}
for name, arr in [("float32", x32), ("float64", x64)]:
    x = arr
    fit(lam)  # warm-up
    secs = []
    for _ in range(rounds):
        start = time.perf_counter()
        clf = fit(lam)
        secs.append(time.perf_counter() - start)
    by_input[name] = (secs, clf)
    print(f"scikit-learn {sklearn.__version__} LogisticRegression (lbfgs, tol 1e-4, {clf.n_iter_[0]} iterations; {name} input, "
          f"OPENBLAS_NUM_THREADS={threads}): median {np.median(secs):.3f} s [{min(secs):.3f}, {max(secs):.3f}]")
print(f"float32 to float64 once, outside the timed fits: {convert_secs:.3f} s")
best = min(by_input, key=lambda k: np.median(by_input[k][0]))
x = x32 if best == "float32" else x64
secs = by_input[best][0]
auroc = roc_auc_score(t["y_test"], by_input[best][1].decision_function(t["x_test"]))
clf = by_input["float64"][1]
grid_secs = []
for _ in range(rounds):
    start = time.perf_counter()
    for g in grid:
        fit(g)
    grid_secs.append(time.perf_counter() - start)
print(f"scikit-learn on its faster input, {best}: test AUROC {auroc:.4f}")
print(f"scikit-learn loop over {len(grid)} values of C: median {np.median(grid_secs):.3f} s [{min(grid_secs):.3f}, {max(grid_secs):.3f}]")
print("seconds=" + ",".join(str(s) for s in secs))
print("grid_seconds=" + ",".join(str(s) for s in grid_secs))
print(f"convert_seconds={convert_secs}\nauroc={auroc}\ninput={best}")
print("coef=" + ",".join(repr(float(v)) for v in clf.coef_[0]))
print(f"intercept={float(clf.intercept_[0])!r}\nobjective={objective(clf.coef_[0], clf.intercept_[0])!r}")
sweep_secs, sweep_aurocs = 0.0, []
for perm in t["perms"]:
    for b in t["budgets"]:
        start = time.perf_counter()
        clf = fit(lam, perm[:b])
        sweep_secs += time.perf_counter() - start
        sweep_aurocs.append(roc_auc_score(t["y_test"], clf.decision_function(t["x_test"])))
print(f"scikit-learn sweep-shaped: {len(sweep_aurocs)} fits: {sweep_secs:.3f} s fitting; mean test AUROC {sum(sweep_aurocs) / len(sweep_aurocs):.4f}")
print(f"sweep_seconds={sweep_secs}")
print("sweep_aurocs=" + ",".join(str(a) for a in sweep_aurocs))
# The budgets up to 1,024 again, converged to tol 1e-10: how far the
# default tolerance stops from the optimum where the problems are small.
tight = []
for perm in t["perms"]:
    for b in [b for b in t["budgets"] if b <= 1024]:
        clf = LogisticRegression(C=1.0 / (lam * b), class_weight="balanced", max_iter=100000, tol=1e-10).fit(x64[perm[:b]], y[perm[:b]])
        tight.append(roc_auc_score(t["y_test"], clf.decision_function(t["x_test"])))
print("tight_aurocs=" + ",".join(str(a) for a in tight))
