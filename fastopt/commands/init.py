"""`fastopt init DIR`: lay out a workspace for a pip install (no clone needed).

Writes ``DIR/strategies/sol_trend/strategy.py`` (the example strategy shipped in
the package, ``fastopt/data/examples/``; a copy of the repository's
``strategies/sol_trend/strategy.py``) and ``DIR/README.md`` (the next commands).
A DIR that exists and is not empty is refused unless ``--force``; even then no
file is ever overwritten (each is created exclusively; existing ones are kept
and listed).
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import sys
from pathlib import Path

from fastopt.errors import EXIT_CODES, EXIT_OK, FastoptError, InputError, NothingToDo

SUMMARY = "lay out a workspace (strategies/ with an example strategy, README) for a pip install"

#: The example strategies shipped as package data: fastopt/data/examples/<name>/strategy.py.
EXAMPLE_PACKAGE = "fastopt"
EXAMPLE_FOLDER = ("data", "examples")
EXAMPLE_STRATEGY = "sol_trend"

EPILOG = """examples:
  fastopt init my_portfolio              # my_portfolio/strategies/sol_trend/strategy.py + README.md
  cd my_portfolio && fastopt backtest    # then: fastopt optimize --target-vol 0.30
  fastopt init . --force                 # add the missing files to a non-empty folder (nothing overwritten)

here: 2 DIR is a file, or exists and is not empty without --force; 3 --force and every file already exists.

""" + EXIT_CODES

WORKSPACE_README = """# fastopt workspace

Made by `fastopt init`. One folder per strategy under `strategies/`, each with a `strategy.py`
(`sol_trend` is an example: copy it, change `signal()` and `SYMBOL`).

```sh
fastopt backtest                       # every strategies/*/strategy.py -> stats.json + pnl.png
FASTOPT_OFFLINE=1 fastopt backtest     # no network: the real daily history embedded in fastopt
fastopt optimize --target-vol 0.30     # weights -> portfolio_config.json
fastopt walkforward                    # does re-optimizing beat random weights out of sample?
fastopt backtest --live                # today's positions -> strategies/*/state.json
fastopt reconcile --once --dry-run     # the orders it would send (paper exchange by default)
```

`fastopt <command> --help` lists every option and the exit codes.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("dir", metavar="DIR", help="workspace folder to create (or fill, with --force)")
    parser.add_argument("--force", action="store_true",
                        help="accept a non-empty DIR: add the missing files, never overwrite one")


def example_strategy() -> str:
    """The text of the example strategy shipped in the package."""
    resource = importlib.resources.files(EXAMPLE_PACKAGE).joinpath(*EXAMPLE_FOLDER, EXAMPLE_STRATEGY, "strategy.py")
    try:
        return resource.read_text(encoding="utf-8")
    except OSError as exc:  # a broken install: the package data is missing
        raise FastoptError(f"the example strategy is missing from the installed package ({exc})") from None


def workspace_files() -> dict[str, str]:
    """Relative path -> text of every file `fastopt init` writes."""
    return {
        f"strategies/{EXAMPLE_STRATEGY}/strategy.py": example_strategy(),
        "README.md": WORKSPACE_README,
    }


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        raise InputError("not a folder", path=root)
    if root.is_dir() and any(root.iterdir()) and not args.force:
        raise InputError("folder is not empty (--force adds the missing files, never overwrites)", path=root)
    files = workspace_files()
    created: list[Path] = []
    kept: list[Path] = []
    try:
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(path, "x", encoding="utf-8") as handle:  # exclusive: never overwrites
                    handle.write(text)
            except FileExistsError:
                kept.append(path)
                continue
            created.append(path)
    except OSError as exc:
        where = exc.filename or root
        raise FastoptError(f"cannot write the workspace: {exc.strerror or exc}", path=where) from None
    for path in created:
        print(f"created {path}")
    for path in kept:
        print(f"fastopt init: kept existing {path}", file=sys.stderr)
    if not created:
        raise NothingToDo("every workspace file already exists; nothing written", path=root)
    where = "" if os.path.abspath(root) == os.getcwd() else f"cd {root} && "
    print(f"next: {where}fastopt backtest   (see {root / 'README.md'})")
    return EXIT_OK
