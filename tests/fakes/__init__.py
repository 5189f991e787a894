"""Test helpers of the reconciler tests (fake exchange server lives in tests/fake_binance.py)."""
