"""The layout's one-way rule (docs/architecture.md), checked on every import in the source.

Layers, lowest first: base modules (``fastopt/errors.py``, ``metrics.py``, ``options.py``,
``callable_module.py``, ``compile_notice.py``) < ``fastopt/files/`` < ``fastopt/optimize/`` and ``fastopt/backtest/`` <
``fastopt/walkforward/`` < ``fastopt/dashboard/`` < ``fastopt/commands/`` and ``fastopt/cli.py``.
A module may import its own layer and lower ones, never a higher one (function-level imports
included). The reconciler imports only base and files modules (plus the price loader of the
paper exchange), never numba code or the optimizer; no product code imports ``bench``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The base layer: modules directly in fastopt/ that every layer may use (they may use each other).
BASE = {"fastopt.errors", "fastopt.metrics", "fastopt.options", "fastopt.callable_module", "fastopt.compile_notice"}

RANK = {
    "fastopt": 0,  # the package's __init__ (lazy public API) is checked separately
    "fastopt.base": 0,
    "fastopt.files": 1,
    "fastopt.optimize": 2,
    "fastopt.backtest": 2,
    "fastopt.walkforward": 3,
    "fastopt.dashboard": 4,
    "fastopt.commands": 5,
    "fastopt.cli": 5,
    "fastopt.__main__": 6,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "fastopt"
    top = ".".join(parts[:2])
    return "fastopt.base" if top in BASE else top


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "fastopt":  # `from fastopt import walkforward` imports that sub-package
                found.extend(
                    (node.lineno, f"fastopt.{alias.name}")
                    for alias in node.names
                    if (ROOT / "fastopt" / alias.name).is_dir() or (ROOT / "fastopt" / f"{alias.name}.py").is_file()
                )
    return found


def _source_files(top: str) -> list[Path]:
    return sorted(p for p in (ROOT / top).rglob("*.py") if "data" not in p.relative_to(ROOT / top).parts[:1])


def test_every_fastopt_module_is_in_a_known_layer():
    unknown = [str(p) for p in _source_files("fastopt") if _layer(_module_name(p)) not in RANK]
    assert not unknown, f"modules outside the layout's layers (add them to docs/architecture.md): {unknown}"


@pytest.mark.parametrize("path", _source_files("fastopt"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path):
    me = _module_name(path)
    if me == "fastopt":
        return  # the lazy public API names modules of every layer by string only
    my_rank = RANK[_layer(me)]
    bad = []
    for line, module in _imports(path):
        if module == "fastopt" or not module.startswith("fastopt."):
            if module.split(".")[0] == "bench":
                bad.append(f"line {line}: {module} (product code never imports bench)")
            continue
        if _layer(module) == _layer(me):
            continue
        if RANK[_layer(module)] >= my_rank:
            bad.append(f"line {line}: {module} (layer {_layer(module)} is not below {_layer(me)})")
    assert not bad, f"{path.relative_to(ROOT)} imports upward: {bad}"


def test_same_rank_layers_do_not_import_each_other():
    """optimize and backtest share a rank: neither may import the other."""
    for path in _source_files("fastopt"):
        me = _layer(_module_name(path))
        for line, module in _imports(path):
            if module.startswith("fastopt.") and me != _layer(module) and me in RANK and _layer(module) in RANK:
                assert not (RANK[me] == RANK[_layer(module)] and me != "fastopt"), f"{path}:{line} imports {module}"


@pytest.mark.parametrize("path", _source_files("reconciler"), ids=lambda p: str(p.relative_to(ROOT)))
def test_reconciler_imports_only_base_and_files(path):
    allowed = {"fastopt", "fastopt.base", "fastopt.files", "fastopt.cli", "fastopt.backtest"}
    bad = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if top in {"numba", "bench", "cvxpy"}:
            bad.append(f"line {line}: {module}")
        elif top == "fastopt" and _layer(module) not in allowed:
            bad.append(f"line {line}: {module}")
        elif module.startswith("fastopt.backtest") and module != "fastopt.backtest.prices":
            bad.append(f"line {line}: {module} (only the price loader of the paper exchange)")
        elif module == "fastopt.cli" and path.name != "__main__.py":
            bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(ROOT)}: {bad}"


def test_importing_the_whole_reconciler_loads_no_numba_and_no_optimizer():
    """The real import graph (transitive), not only the source lines: a daemon that trades money
    starts without compiling or loading any kernel."""
    modules = sorted(_module_name(p) for p in _source_files("reconciler") if p.name != "__main__.py")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'numba', 'cvxpy', 'bench'}"
        " or m.startswith(('fastopt.optimize', 'fastopt.walkforward')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the reconciler pulled in: {out.stdout.strip()}"


def test_importing_files_layer_loads_no_numba():
    code = (
        "import fastopt.files.loader, fastopt.files.stats, fastopt.files.config, fastopt.files.state, sys\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'"
        " or m.startswith(('fastopt.optimize', 'fastopt.walkforward', 'fastopt.backtest')))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_checker_sees_a_violation(tmp_path):
    """The rule can fail: an upward import written into a files-layer module is reported."""
    probe = ROOT / "fastopt" / "files" / "_layout_probe.py"
    probe.write_text("def f():\n    from fastopt.optimize.solver import optimize\n    return optimize\n")
    try:
        with pytest.raises(AssertionError, match="imports upward"):
            test_no_module_imports_a_higher_layer(probe)
    finally:
        probe.unlink()
