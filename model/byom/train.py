"""Train the bring-your-own-model examples: models shaped like the ones users bring.

Run it with the runtime's Python, as a user trains for the container::

    "$(skdeploy runtime --framework 1.2-1)" model/byom/train.py KIND OUT_DIR [HANDLER_DIR]

``KIND`` is one of:

``custom``
    A Pipeline with the user's own transformers, ``my_features.AddRatio`` (a module) and
    ``featurelib.clip.ClipToTrainingRange`` (a package), imported from ``HANDLER_DIR`` (the
    stack's ``inference/``, where they ship), then a Ridge regression. The stack needs
    ``skdeploy:trustedModules: [my_features, featurelib]``.
``mixed``
    A ColumnTransformer over a DataFrame with numeric and text columns (one-hot encoded), then
    a logistic regression with string labels: fitted on named columns, so it takes JSON objects,
    CSV with a header row and JSON Lines.
``classifier``
    A three-class classifier with string labels on numeric rows; ``samples.json`` records its
    classes, probabilities and accuracy.

Each writes ``model.joblib`` and ``samples.json`` (instances, expected predictions, tolerance,
targets and training-time metrics; for classifiers also ``classes`` and ``probabilities``) into
``OUT_DIR``. Deterministic: fixed seeds. Runs under the container's Python (3.9).
"""

import json
import os
import sys

import joblib
import numpy as np
import sklearn

SEED = 20261205
ROWS = 400
HOLDOUT = 40


def _split(n):
    order = np.random.default_rng(SEED).permutation(n)
    return order[HOLDOUT:], order[:HOLDOUT]


def custom(handler_dir):
    sys.path.insert(0, handler_dir)
    from featurelib.clip import ClipToTrainingRange
    from my_features import AddRatio
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(SEED)
    X = np.column_stack(
        [rng.uniform(1, 100, ROWS), rng.uniform(1, 10, ROWS), rng.normal(0, 1, ROWS)]
    ).round(3)
    y = (3.0 * X[:, 0] / X[:, 1] + 2.0 * X[:, 2] + rng.normal(0, 0.5, ROWS)).round(3)
    train, test = _split(ROWS)
    model = Pipeline(
        [
            ("ratio", AddRatio(numerator=0, denominator=1)),
            ("clip", ClipToTrainingRange()),
            ("regress", Ridge(alpha=1.0)),
        ]
    ).fit(X[train], y[train])
    predictions = model.predict(X[test])
    metrics = {
        "rmse": float(np.sqrt(mean_squared_error(y[test], predictions))),
        "mae": float(mean_absolute_error(y[test], predictions)),
        "r2": float(r2_score(y[test], predictions)),
    }
    return model, {
        "instances": X[test].tolist(),
        "predictions": [round(float(p), 6) for p in predictions],
        "tolerance": 1e-4,
        "targets": y[test].tolist(),
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
    }


def _classifier_samples(model, rows, instances, targets):
    from sklearn.metrics import accuracy_score

    predictions = model.predict(rows)
    return {
        "instances": instances,
        "predictions": [str(p) for p in predictions],
        "tolerance": 1e-6,
        "targets": [str(t) for t in targets],
        "classes": [str(c) for c in model.classes_],
        "probabilities": np.round(model.predict_proba(rows), 9).tolist(),
        "metrics": {"accuracy": round(float(accuracy_score(targets, predictions)), 6)},
    }


def mixed(_handler_dir):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(SEED)
    cities = np.array(["Lyon", "Paris", "Nantes", "Lille"])
    plans = np.array(["basic", "plus", "pro"])
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, ROWS).astype(np.float64),
            "monthly_spend": rng.uniform(10, 200, ROWS).round(2),
            "city": cities[rng.integers(0, len(cities), ROWS)],
            "plan": plans[rng.integers(0, len(plans), ROWS)],
        }
    )
    score = (
        -0.05 * frame["tenure_months"]
        + 0.02 * frame["monthly_spend"]
        + (frame["plan"] == "basic") * 1.0
        + rng.normal(0, 0.5, ROWS)
    )
    labels = np.where(score > score.median(), "churn", "stay")
    train, test = _split(ROWS)
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
                        ("numbers", StandardScaler(), ["tenure_months", "monthly_spend"]),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame.iloc[train], labels[train])
    rows = frame.iloc[test]
    instances = [
        {
            "tenure_months": float(r.tenure_months),
            "monthly_spend": float(r.monthly_spend),
            "city": str(r.city),
            "plan": str(r.plan),
        }
        for r in rows.itertuples()
    ]
    return model, _classifier_samples(model, rows, instances, labels[test])


def classifier(_handler_dir):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(SEED)
    species = np.array(["setosa", "versicolor", "virginica"])
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    kind = rng.integers(0, 3, ROWS)
    X = (centers[kind] + rng.normal(0, 0.35, (ROWS, 4))).round(2)
    train, test = _split(ROWS)
    model = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=SEED)
    model.fit(X[train], species[kind[train]])
    return model, _classifier_samples(model, X[test], X[test].tolist(), species[kind[test]])


KINDS = {"custom": custom, "mixed": mixed, "classifier": classifier}


def main(argv):
    if len(argv) not in (2, 3) or argv[0] not in KINDS:
        sys.stderr.write(__doc__)
        return 2
    kind, out_dir = argv[0], argv[1]
    handler_dir = argv[2] if len(argv) == 3 else os.path.join(os.getcwd(), "inference")
    model, samples = KINDS[kind](handler_dir)
    samples["description"] = "bring-your-own-model example: " + kind
    samples["trained_with"] = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    os.makedirs(out_dir, exist_ok=True)
    joblib.dump(model, os.path.join(out_dir, "model.joblib"))
    with open(os.path.join(out_dir, "samples.json"), "w") as handle:
        json.dump(samples, handle, indent=2)
        handle.write("\n")
    print(f"trained {kind} example into {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
