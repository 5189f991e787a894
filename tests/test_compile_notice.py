"""The first-run compile notice: one line on stderr when kernels compile, none from a warm cache."""
from __future__ import annotations

import os
import subprocess
import sys

from fastopt.compile_notice import MESSAGE

CALL_ONE_KERNEL = (
    "import numpy as np\n"
    "from fastopt.optimize.kernels import argsort_nb, cholesky_solve_nb\n"
    "argsort_nb(np.array([2.0, 1.0]))\n"
    "cholesky_solve_nb(np.eye(2), np.ones(2))\n"
    "from fastopt import compile_notice\n"
    "print(round(compile_notice.compile_seconds(), 3), compile_notice.announced())\n"
)


def _run(code: str, cache_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_cold_cache_says_so_once_and_warm_cache_says_nothing(tmp_path):
    cold = _run(CALL_ONE_KERNEL, tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(MESSAGE) == 1, cold.stderr  # two kernels compiled, one line
    seconds, announced = cold.stdout.split()
    assert float(seconds) > 0 and announced == "True"
    warm = _run(CALL_ONE_KERNEL, tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert MESSAGE not in warm.stderr
    assert warm.stdout.split() == ["0.0", "False"]


def test_warmup_silences_the_notice(tmp_path):
    code = "from fastopt import compile_notice\ncompile_notice.silence()\n" + CALL_ONE_KERNEL
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert MESSAGE not in out.stderr


def test_commands_that_do_not_compute_never_load_numba():
    """status / reconcile / check import no kernel module, so they can never print the notice
    (or pay numba's import)."""
    code = (
        "import sys\n"
        "import fastopt.commands.status, fastopt.commands.reconcile, fastopt.commands.check\n"
        "import reconciler.engine, reconciler.cli\n"
        "print(any(m.split('.')[0] == 'numba' for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
