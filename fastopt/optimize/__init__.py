"""Layer 2, the optimizer: from a returns window to weights and leverage.

- ``objective`` - the slope/std definition, window statistics (g, covariance), scoring;
- ``solver`` - ``solve_ratio`` / ``optimize`` (seeded search + exact refinement), with its
  internals in ``ratio/`` (candidates, refinement, working set, cardinality, compound);
- ``kernels``, ``active_set_kernels``, ``cholesky_kernels`` - numba kernels (``*_nb``), with
  their plain-numpy twins in ``kernels_np``;
- ``exact`` - the cvxpy reference; ``allocators`` - baselines and user allocators;
- ``allocation`` - the result type; ``leverage`` - vol targeting.

Depends on ``fastopt.files`` (panels) and the base modules only. ``fastopt.optimize(...)`` is the
package itself, callable as :func:`fastopt.optimize.solver.optimize`.
"""
from fastopt.callable_module import make_callable

make_callable(__name__, "fastopt.optimize.solver", "optimize")
