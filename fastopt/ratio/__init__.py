"""The slope/std solver behind ``fastopt.optimizer`` (public entry points live there)."""
