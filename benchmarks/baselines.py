"""scikit-learn baselines on the flattened grids of a recipe's split: what the CNN has to beat on the same features.

Each baseline sees exactly the training and test grids the CNN sees, flattened to rows of C * H * W values. The
slow ones (SVC is quadratic in rows, HistGradientBoosting builds one tree per class per iteration) are trained on a
seeded subset of the training rows, and the row count goes into the results so the tables can say so. The models
keep scikit-learn's defaults apart from what bounds their time.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from gridcnn.workflow.recipes import at_most  # the seeded row subset recipes use for max_train

#: name -> table label, in the order of the tables and the chart.
BASELINES = {
    "logreg": "LogisticRegression",
    "svc_rbf": "SVC (RBF)",
    "hist_gb": "HistGradientBoosting",
    "mlp": "MLPClassifier",
}


def make_baseline(name: str, seed: int = 0):
    """The unfitted baseline called ``name``.

    Parameters
    ----------
    name : {"logreg", "svc_rbf", "hist_gb", "mlp"}
        Which baseline.
    seed : int, default=0
        ``random_state`` of the models that draw random numbers.

    Returns
    -------
    estimator : sklearn estimator
        Unfitted.
    """
    # No StandardScaler: the adapters already scale the grids (pixels in [0, 1], standardised log-mels and signals),
    # and rescaling every MNIST pixel to unit variance lowered SVC from 95.1% to 92.3% on 5,000 training digits.
    if name == "logreg":
        return LogisticRegression(max_iter=200)  # lbfgs; 200 iterations bound the time on 60,000 x 784
    if name == "svc_rbf":
        return SVC()
    if name == "hist_gb":
        # scikit-learn turns early stopping on by itself above 10,000 rows; on for every size, so all are treated alike
        return HistGradientBoostingClassifier(early_stopping=True, random_state=seed)
    if name == "mlp":
        return MLPClassifier(early_stopping=True, random_state=seed)
    raise ValueError(f"Unknown baseline {name!r}; baselines: {', '.join(BASELINES)}.")


def fit_and_score(model, X_train, y_train, X_test, y_test) -> dict:
    """Fit ``model``, score it on the test rows; accuracy, fit and predict seconds and the training row count."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # LogisticRegression's lbfgs may stop at max_iter on the bigger grids: bounded time is the point here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(model.predict(X_test) == np.asarray(y_test)))
    return {"accuracy": accuracy, "fit_s": fit_s, "predict_s": time.perf_counter() - start, "n_train": len(y_train)}


def run_baselines(G_train, y_train, G_test, y_test, max_rows: dict, seed: int = 0, names=tuple(BASELINES)) -> dict:
    """Every baseline on the flattened grids.

    Parameters
    ----------
    G_train, G_test : ndarray of shape (n, C, H, W)
        The grids the CNN trains and is tested on.
    y_train, y_test : ndarray of shape (n,)
        Their labels.
    max_rows : dict
        Baseline name -> most training rows it gets (missing or None: all of them).
    seed : int, default=0
        Seed of the row subsets and of the models.
    names : iterable of str
        Which baselines to run.

    Returns
    -------
    results : dict
        Baseline name -> the dict of `fit_and_score`.
    """
    X_train, X_test = G_train.reshape(len(G_train), -1), G_test.reshape(len(G_test), -1)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    results = {}
    for name in names:
        Xs, ys = at_most(X_train, y_train, max_rows.get(name), seed)
        results[name] = fit_and_score(make_baseline(name, seed), Xs, ys, X_test, y_test)
    return results
