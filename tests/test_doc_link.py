"""The HTML repr links skgfe's estimators to their pages of the API reference."""

import tomllib
from pathlib import Path

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr

from skgfe import AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
ESTIMATORS = [GradientFlowEncoder(), AutoencoderBaseline(), OneBitAutoencoder(8)]


def _documentation_url():
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)["project"]["urls"]["Documentation"]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_doc_link_is_the_estimator_page_of_the_api_reference(estimator):
    # docs/api.rst's autosummary writes generated/skgfe.<name>.html.
    name = type(estimator).__name__
    expected = f"{_documentation_url().rstrip('/')}/generated/skgfe.{name}.html"
    assert estimator._get_doc_link() == expected


def test_html_repr_of_a_pipeline_links_both_libraries():
    html = estimator_html_repr(make_pipeline(StandardScaler(), GradientFlowEncoder()))
    assert GradientFlowEncoder()._get_doc_link() in html
    assert StandardScaler()._get_doc_link() in html


def test_the_imputer_links_to_its_page_in_skgfe_impute():
    from skgfe.impute import GradientFlowImputer

    expected = (
        f"{_documentation_url().rstrip('/')}/generated/"
        "skgfe.impute.GradientFlowImputer.html"
    )
    assert GradientFlowImputer()._get_doc_link() == expected
