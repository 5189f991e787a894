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
#: Real daily OHLCV (BTC, ETH, BNB, SOL to 2024-12-31), kept beside the repo, never copied in.
SHARED_PRICES = REPO_ROOT.parent / "shared" / "data" / "prices"

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
def shared_prices() -> Path:
    """Folder of the real price CSVs; the suite fails loudly (not skips) if it is missing."""
    if not (SHARED_PRICES / "BTC-USD.csv").is_file():
        pytest.fail(f"real price data not found at {SHARED_PRICES} (expected ../shared beside the repo)")
    return SHARED_PRICES
