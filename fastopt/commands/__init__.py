"""One module per `fastopt <command>` (see fastopt/cli.py for the contract)."""
