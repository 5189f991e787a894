"""Alternatives a user would run instead of fastopt, written for the benchmark.

Every baseline is independent of ``fastopt`` (it only uses numpy/scipy/cvxpy/
pandas/PyPortfolioOpt) so that the bench can check fastopt's results against
them instead of against fastopt itself.
"""
