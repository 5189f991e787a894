"""Benchmark suite and synthetic-data generators (``python -m bench``; ``bench.universe``)."""
