"""`python -m reconciler [options]` = `fastopt reconcile [options]`."""
from __future__ import annotations

import sys

from fastopt.cli import main

if __name__ == "__main__":
    sys.exit(main(["reconcile", *sys.argv[1:]]))
