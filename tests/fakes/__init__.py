"""Test helpers: reconciler workspaces (``workspace``; the fake exchange server is tests/fake_binance.py)
and seeded return windows for the optimizer tests (``universes``)."""
