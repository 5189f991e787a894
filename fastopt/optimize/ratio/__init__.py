"""The slope/std solver behind ``fastopt.optimize.solver`` (public entry points live there)."""
