"""Fixed-seed results stay bit-identical (see tests/_reference_cases.py)."""

import json
import warnings

import pytest
import torch

from tests._reference_cases import RESULTS, cases

_RECORDED = json.loads(RESULTS.read_text())


@pytest.mark.skipif(
    torch.__version__ != _RECORDED["torch"],
    reason=f"digests recorded with torch {_RECORDED['torch']}; kernels of other "
    "versions may round differently",
)
@pytest.mark.parametrize("name", sorted(_RECORDED["digests"]))
def test_results_are_bit_identical_to_the_recorded_ones(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        digest = cases()[name]()
    assert digest == _RECORDED["digests"][name]


def test_every_case_is_recorded():
    assert set(cases()) == set(_RECORDED["digests"])
