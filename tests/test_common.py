"""scikit-learn's estimator checks on small CPU configurations of every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgfe import AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder

SMALL = {"hidden_layer_sizes": (8,), "max_iter": 5, "device": "cpu", "random_state": 0}

ESTIMATORS = [
    AutoencoderBaseline(**SMALL),
    GradientFlowEncoder(**SMALL),
    GradientFlowEncoder(ode_order=2, **SMALL),
    GradientFlowEncoder(flow_solver="rk4", tau=20.0, step_size=1.0, **SMALL),
    OneBitAutoencoder(decoder="linear+denoiser", **SMALL),
    OneBitAutoencoder(
        encoder="tight_frame", decoder="linear+denoiser", denoiser="learned", **SMALL
    ),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# The fixed steps at the default tau=1e4 (and step_size=1) stop each sample on
# flow_tol; before they did, this configuration ran 1000 steps per flow. Its
# checks take about 4 minutes on one CPU thread.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning")
@parametrize_with_checks([GradientFlowEncoder(flow_solver="rk4", **SMALL)])
def test_sklearn_compatible_fixed_step_solver_at_default_tau(estimator, check):
    check(estimator)
