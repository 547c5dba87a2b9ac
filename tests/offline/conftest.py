"""Synthetic datasets shared by the offline tests, generated once per test run."""

from __future__ import annotations

import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig, generate_with_truth


@pytest.fixture(scope="package")
def tiny() -> tuple[Dataset, GroundTruth]:
    return generate_with_truth(SyntheticConfig.preset("tiny"))


@pytest.fixture(scope="package")
def small() -> tuple[Dataset, GroundTruth]:
    return generate_with_truth(SyntheticConfig.preset("small"))
