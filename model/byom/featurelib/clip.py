"""Clip features to the range seen in training, so outliers do not run away."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ClipToTrainingRange(BaseEstimator, TransformerMixin):
    """Clip each column to the [min, max] it had when fitted."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.low_ = X.min(axis=0)
        self.high_ = X.max(axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=np.float64), self.low_, self.high_)
