"""The one place that imports other packages' private names: upgrades touch one file.

scikit-learn's parameter validation and fit context, and torchdiffeq's table of
its methods (it exports no public list of names).
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
)
from sklearn.utils.validation import validate_data
from torchdiffeq._impl.odeint import SOLVERS as TORCHDIFFEQ_SOLVERS

__all__ = [
    "TORCHDIFFEQ_SOLVERS",
    "Interval",
    "StrOptions",
    "_fit_context",
    "validate_data",
]
