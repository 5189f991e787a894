"""Shared test fixtures and hypothesis profiles.

Profiles: ``ci`` (default; bounded example counts, no deadline since numba
compiles on first call) and ``thorough`` (HYPOTHESIS_PROFILE=thorough).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the real daily price CSVs (BTC, ETH, BNB, SOL-USD.csv to 2024-12-31).

    The series embedded in the package (fastopt/data/prices), written out once per session as plain
    CSVs, so every test runs from a plain clone; the suite fails loudly (not skips) if they are missing.
    """
    from fastopt.backtest.prices import embedded_files, export_embedded_prices

    if "BTC-USD.csv" not in embedded_files():
        pytest.fail("embedded real price data not found in fastopt/data/prices (see fastopt/data/README.md)")
    return export_embedded_prices(tmp_path_factory.mktemp("prices"))
