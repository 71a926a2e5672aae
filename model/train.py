"""Train the example model: monthly salary from months of management experience.

Run it with ``make model``, which uses the container-faithful runtime virtualenv, so the pickle
is written by exactly the scikit-learn and numpy the serving container has (a pickle from another
version may load and then fail at predict time). The data is a small synthetic table with a fixed
seed; a holdout of it becomes ``samples.json``, which the tests and the smoke test use:

- ``instances``: holdout rows, as the endpoint receives them;
- ``predictions``: what the model answers for them, compared within ``tolerance`` (absolute);
- ``targets``: the true values, so the smoke test can recompute the metrics on the endpoint;
- ``metrics``: RMSE, MAE and R² of the holdout at training time.

This file runs under the container's Python (3.9): keep its syntax and imports to what is there.
"""

import json
import os
import sys

import joblib
import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

SEED = 20240917
ROWS = 200
HOLDOUT = 0.2
#: Absolute tolerance on a predicted salary: float32 vs float64 round-off on values near 10,000.
TOLERANCE = 0.01


def make_table(rng):
    """Months of management experience (0-240) and a monthly salary with noise."""
    months = rng.integers(0, 241, size=ROWS).astype(np.float64)
    salary = 3000.0 + 22.5 * months + rng.normal(0.0, 250.0, size=ROWS)
    return months.reshape(-1, 1), np.round(salary, 2)


def main(out_dir):
    rng = np.random.default_rng(SEED)
    features, target = make_table(rng)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=HOLDOUT, random_state=SEED
    )
    model = LinearRegression().fit(x_train, y_train)
    predictions = model.predict(x_test)
    samples = {
        "description": "monthly salary from months of management experience (holdout rows)",
        "features": ["months_of_management_experience"],
        "instances": x_test.tolist(),
        "predictions": [round(float(p), 6) for p in predictions],
        "tolerance": TOLERANCE,
        "targets": y_test.tolist(),
        "metrics": {
            "rmse": round(float(np.sqrt(mean_squared_error(y_test, predictions))), 6),
            "mae": round(float(mean_absolute_error(y_test, predictions)), 6),
            "r2": round(float(r2_score(y_test, predictions)), 6),
        },
        "trained_with": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    joblib.dump(model, os.path.join(out_dir, "model.joblib"))
    with open(os.path.join(out_dir, "samples.json"), "w") as handle:
        json.dump(samples, handle, indent=2)
        handle.write("\n")
    metrics = samples["metrics"]
    print(
        f"trained LinearRegression on {len(x_train)} rows (scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}): holdout RMSE {metrics['rmse']:.2f}, MAE {metrics['mae']:.2f}, "
        f"R2 {metrics['r2']:.4f}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
