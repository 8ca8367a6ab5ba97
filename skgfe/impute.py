"""Imputers built on Gradient Flow Encoding.

Like :mod:`sklearn.impute`, a module of its own: import the imputer as
``from skgfe.impute import GradientFlowImputer``.
"""

from ._impute import GradientFlowImputer

__all__ = ["GradientFlowImputer"]
