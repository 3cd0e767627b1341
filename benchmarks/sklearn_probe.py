"""scikit-learn's LogisticRegression on the features bench_probe writes.

    python benchmarks/sklearn_probe.py <probe.safetensors> <lambda> <grid,of,lambdas>
Prints `seconds=`, `auroc=` and `grid_seconds=` for the caller to parse.
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


def fit(lmb):
    clf = LogisticRegression(C=1.0 / (lmb * n), class_weight="balanced", max_iter=1000, tol=1e-4)
    return clf.fit(x, y)


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
print(f"seconds={secs}\nauroc={auroc}\ngrid_seconds={grid_secs}")
