"""scikit-learn's LogisticRegression on the features bench_probe writes.

    python benchmarks/sklearn_probe.py <probe.safetensors> <lambda> <grid,of,lambdas>
Also fits the sweep-shaped workload: for each permutation in `perms`, one
probe per budget on its first `budget` rows.
Prints `seconds=`, `auroc=`, `grid_seconds=`, `sweep_seconds=`,
`sweep_aurocs=` and `tight_aurocs=` (budgets up to 1,024 at tol 1e-10)
for the caller to parse.
"""
import sys
import time

import sklearn
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

t = load_file(sys.argv[1])
lam = float(sys.argv[2])
grid = [float(g) for g in sys.argv[3].split(",")]
x, y = t["x_train"], t["y_train"].astype(int)
n = len(y)


def fit(lmb, rows=None):
    xs, ys = (x, y) if rows is None else (x[rows], y[rows])
    clf = LogisticRegression(C=1.0 / (lmb * len(ys)), class_weight="balanced", max_iter=1000, tol=1e-4)
    return clf.fit(xs, ys)


start = time.perf_counter()
clf = fit(lam)
secs = time.perf_counter() - start
auroc = roc_auc_score(t["y_test"], clf.decision_function(t["x_test"]))
start = time.perf_counter()
for g in grid:
    fit(g)
grid_secs = time.perf_counter() - start
print(f"scikit-learn {sklearn.__version__} LogisticRegression (lbfgs, {clf.n_iter_[0]} iterations): {secs:.3f} s, test AUROC {auroc:.4f}")
print(f"scikit-learn loop over {len(grid)} values of C: {grid_secs:.3f} s")
sweep_secs, sweep_aurocs = 0.0, []
for perm in t["perms"]:
    for b in t["budgets"]:
        start = time.perf_counter()
        clf = fit(lam, perm[:b])
        sweep_secs += time.perf_counter() - start
        sweep_aurocs.append(roc_auc_score(t["y_test"], clf.decision_function(t["x_test"])))
print(f"scikit-learn sweep-shaped: {len(sweep_aurocs)} fits: {sweep_secs:.3f} s fitting; mean test AUROC {sum(sweep_aurocs) / len(sweep_aurocs):.4f}")
print(f"seconds={secs}\nauroc={auroc}\ngrid_seconds={grid_secs}\nsweep_seconds={sweep_secs}")
print("sweep_aurocs=" + ",".join(str(a) for a in sweep_aurocs))
# The budgets up to 1,024 again, converged to tol 1e-10: how far the
# default tolerance stops from the optimum where the problems are small.
tight = []
for perm in t["perms"]:
    for b in [b for b in t["budgets"] if b <= 1024]:
        clf = LogisticRegression(C=1.0 / (lam * b), class_weight="balanced", max_iter=100000, tol=1e-10).fit(x[perm[:b]], y[perm[:b]])
        tight.append(roc_auc_score(t["y_test"], clf.decision_function(t["x_test"])))
print("tight_aurocs=" + ",".join(str(a) for a in tight))
