"""A user's own transformer module, as it would sit in ``inference/my_features.py``.

The bring-your-own-model example (``train.py custom``) imports it from the handler folder, so the
pickle names ``my_features.AddRatio``; the module ships in the artifact's ``code/`` and the stack
trusts it with ``skdeploy:trustedModules: [my_features, featurelib]``. It runs under the
container's Python: keep to its syntax and to the container's packages.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class AddRatio(BaseEstimator, TransformerMixin):
    """Append the ratio of two columns (``numerator / denominator``) as a new feature."""

    def __init__(self, numerator=0, denominator=1):
        self.numerator = numerator
        self.denominator = denominator

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        ratio = X[:, self.numerator] / np.where(
            X[:, self.denominator] == 0, 1.0, X[:, self.denominator]
        )
        return np.column_stack([X, ratio])
