"""The one place that imports private scikit-learn names, so upgrades touch one file."""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
)
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "Options", "StrOptions", "_fit_context", "validate_data"]
