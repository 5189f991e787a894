"""`fastopt warmup`: compile every numba kernel once so later runs start fast.

Kernels are compiled with ``cache=True``: the machine code lands in numba's
cache (``__pycache__`` beside the modules, or ``NUMBA_CACHE_DIR``), so the
first real ``fastopt optimize`` / ``walkforward`` does not pay the compile time.
Every ``fastopt`` module (any sub-package) whose name ends in ``kernels`` and that exposes a
``warmup() -> [(name, seconds)]`` function is warmed up.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

from fastopt.errors import EXIT_CODES

SUMMARY = "compile every numba kernel (fills the cache) and report the compile time"

EPILOG = """examples:
  fastopt warmup            # after install or upgrade; a second run only loads the cache
  fastopt warmup --json
  NUMBA_CACHE_DIR=/var/cache/fastopt fastopt warmup

here: 1 a kernel failed to compile.

""" + EXIT_CODES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--json", action="store_true", help="print the timings as JSON on stdout")


def _kernel_modules() -> list[str]:
    """Every ``fastopt`` module, in any sub-package, whose name ends in ``kernels``."""
    import fastopt

    names = []
    for info in pkgutil.walk_packages(fastopt.__path__, prefix="fastopt."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.endswith("kernels") and not info.ispkg:
            names.append(info.name)
    return sorted(names)


def run(args: argparse.Namespace) -> int:
    from fastopt import compile_notice

    compile_notice.silence()
    started = time.perf_counter()
    results: list[dict[str, object]] = []
    skipped: list[str] = []
    for module_name in _kernel_modules():
        module = importlib.import_module(module_name)
        hook = getattr(module, "warmup", None)
        if not callable(hook):
            skipped.append(module_name)
            continue
        for name, seconds in hook():
            results.append({"module": module_name, "kernel": name, "seconds": float(seconds)})
    total = time.perf_counter() - started
    if args.json:
        from fastopt.files.atomic import dumps_json

        sys.stdout.write(dumps_json({"kernels": results, "total_seconds": total,
                                     "modules_without_warmup": skipped}))
        return 0
    for row in results:
        print(f"{row['module']}.{row['kernel']:<28} {row['seconds'] * 1000:9.1f} ms")
    for module_name in skipped:
        print(f"fastopt warmup: note: {module_name} has no warmup() hook; its kernels compile on first use",
              file=sys.stderr)
    print(f"{len(results)} kernels ready in {total:.2f} s")
    return 0
