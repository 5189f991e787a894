"""Benchmark machinery: timing, parity, extrapolation, subprocess probes, machine facts, reports.

Timing protocol (every case): one untimed warm-up call (its result is the one checked
for parity), then ``repeats`` timed calls; the reported time is their median
(``time.perf_counter``, seconds). ``repeats`` shrinks so that one method stays within
its budget (at least one timed call). A method predicted to exceed its budget is not
run: it is reported as ``skipped`` with the extrapolated time and how it was obtained.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

STATUS_OK = "ok"
STATUS_WRONG = "wrong"  # ran, but the parity check failed: the time is shown, the result is not trusted
STATUS_SKIPPED = "skipped"  # not run (over budget / unavailable), with the reason and maybe an extrapolation
STATUS_ERROR = "error"  # raised an exception


@dataclass
class Timing:
    """Median of ``repeats`` timed calls after an untimed warm-up (seconds)."""

    median_s: float
    times_s: list[float]
    warmup_s: float

    @property
    def repeats(self) -> int:
        return len(self.times_s)


def measure(fn: Callable[[], Any], *, max_repeats: int = 5, budget_s: float = 10.0,
            warmed_up: bool = False) -> tuple[Any, Timing]:
    """Warm up once (untimed, result returned), then time up to ``max_repeats`` calls within ``budget_s``.

    ``warmed_up=True``: the caller already ran the same code on the same data (e.g. a probe
    of one block); no extra warm-up, the first timed call's result is returned.
    """
    result = None
    warmup_s = 0.0
    if not warmed_up:
        start = time.perf_counter()
        result = fn()
        warmup_s = time.perf_counter() - start
    times: list[float] = []
    repeats = max_repeats
    while len(times) < repeats:
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
        if len(times) == 1:
            if warmed_up:
                result = value
            per_call = max(warmup_s, times[0]) if not warmed_up else times[0]
            repeats = max(1, min(max_repeats, int(budget_s / max(per_call, 1e-9))))
    return result, Timing(median_s=statistics.median(times), times_s=times, warmup_s=warmup_s)


def extrapolate_power_law(sizes: Sequence[float], times_s: Sequence[float], target_size: float,
                          *, default_exponent: float = 2.0) -> tuple[float, float]:
    """(predicted seconds, exponent) at ``target_size`` from a log-log fit of the last two points.

    With one point the ``default_exponent`` is assumed. The exponent is clamped to [1, 3]
    so noise at tiny sizes cannot produce absurd predictions.
    """
    if not sizes:
        raise ValueError("no measured size to extrapolate from")
    if len(sizes) >= 2 and sizes[-1] != sizes[-2] and times_s[-2] > 0:
        exponent = math.log(times_s[-1] / times_s[-2]) / math.log(sizes[-1] / sizes[-2])
        exponent = min(3.0, max(1.0, exponent))
    else:
        exponent = default_exponent
    return times_s[-1] * (target_size / sizes[-1]) ** exponent, exponent


def relative_gap(best: float, value: float) -> float:
    """(best − value) / |best|: 0 at the optimum, 1e-3 = 0.1 % below it (negative = above)."""
    if not np.isfinite(value):
        return float("inf")
    return float((best - value) / abs(best)) if best != 0 else float(best - value)


# ----------------------------------------------------------------------------- subprocess probes

def run_python(code: str, *, env: dict[str, str] | None = None, timeout_s: float = 600.0,
               cwd: Path = REPO_ROOT) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object as its last stdout line."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONPATH", "")
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), full_env["PYTHONPATH"]) if p)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=timeout_s, cwd=cwd)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"subprocess exited {proc.returncode}: {tail[0]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("subprocess printed nothing")
    return json.loads(lines[-1])


def run_command(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 600.0,
                cwd: Path = REPO_ROOT) -> tuple[float, subprocess.CompletedProcess]:
    """(wall seconds, completed process) of an external command."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    start = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=full_env, timeout=timeout_s, cwd=cwd)
    return time.perf_counter() - start, proc


# ----------------------------------------------------------------------------- machine facts

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


BENCH_PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "polars", "pandas", "cvxpy", "clarabel",
                  "pyportfolioopt", "ccxt", "matplotlib", "threadpoolctl", "fastopt")


def code_version() -> dict:
    """Git commit of the tree being measured and which measured files had uncommitted changes."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=REPO_ROOT,
                                  timeout=10).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "fastopt", "reconciler", "bench").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "uncommitted": dirty}


def machine_info() -> dict:
    """CPU model, cores, RAM, load, Python, package versions, BLAS pools and thread env settings."""
    from threadpoolctl import threadpool_info

    versions = {}
    for name in BENCH_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    pools = [{k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "prefix")}
             for pool in threadpool_info()]
    thread_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                  "NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR")}
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": versions,
        "threadpools": pools,
        "thread_env": thread_env,
    }


# ----------------------------------------------------------------------------- case results

@dataclass
class Table:
    """One markdown table: ``rows`` are lists of already-formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    """What one case hands to the reporters: tables for people, records for machines."""

    name: str
    title: str
    status: str = "measured"  # "measured" | "not measured"
    reason: str | None = None
    tables: list[Table] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parity_failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name, "title": self.title, "status": self.status, "reason": self.reason,
            "elapsed_s": round(self.elapsed_s, 3), "parity_failures": self.parity_failures,
            "notes": self.notes, "records": self.records,
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows, "notes": t.notes}
                       for t in self.tables],
        }


def not_measured(name: str, title: str, reason: str) -> CaseResult:
    """A case whose subject is not available: say so, never fake numbers."""
    return CaseResult(name=name, title=title, status="not measured", reason=reason)


def fmt_time(seconds: float | None) -> str:
    """Human time: µs/ms/s with 3 significant digits."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.3g}×"


def fmt_gap(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if abs(value) < 1e-12:
        return "0"
    return f"{value:.2e}"


# ----------------------------------------------------------------------------- reports

def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` atomically (fastopt.files.atomic when importable, else temp + replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from fastopt.files.atomic import atomic_write_json

        atomic_write_json(path, payload)
    except ImportError:  # pragma: no cover - fastopt is part of this repo
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str))
        os.replace(tmp, path)


def _markdown_table(table: Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines.extend("| " + " | ".join(str(c) for c in row) + " |" for row in table.rows)
    lines.extend(f"\n_{note}_" for note in table.notes)
    return "\n".join(lines)


def render_markdown(payload: dict, *, command: str, headlines: Sequence[str] = ()) -> str:
    """docs/BENCHMARKS.md from the results payload (``headlines``: bullet lines for the top)."""
    m = payload["machine"]
    parts = [
        "# Benchmarks",
        "",
        "Generated by the benchmark suite (`bench/`); do not edit by hand. Reproduce with:",
        "",
        f"```bash\n{command}\n```",
        "",
        f"Run started {payload['started_at']} UTC, took {payload['elapsed_s']:.0f} s"
        f" ({'quick subset' if payload['quick'] else 'full suite'}, seed {payload['seed']}), code at commit"
        f" {payload.get('code', {}).get('commit')}"
        + (f" with uncommitted changes in {', '.join(payload['code']['uncommitted'])}"
           if payload.get("code", {}).get("uncommitted") else "") + ".",
        "",
        "## Headlines (from this run)",
        "",
        *[f"- {line}" for line in headlines],
        *(["- (none: no case produced its headline numbers)"] if not headlines else []),
        "",
        "## Method",
        "",
        "- Every timed method is first called once untimed (warm-up: numba compile, caches, imports); its result",
        "  is checked (parity) before any timing. (Random search and today's method are first probed on the same",
        "  window — one block / one start — and that probe is their warm-up.) Reported time = median of the",
        "  timed calls that fit the method's budget (`repeats` in the JSON). Wall clock, `time.perf_counter`.",
        "- Seeded data: `bench.universe.generate_universe(N, T, seed)` (seed 0 unless `--seed`).",
        "- Parity: weights must be on the simplex (|Σw−1| and negative parts ≤ 1e-9); fastopt's optimize",
        "  results must reach the best score found by any method within 1e-6 relative and pass the bench's",
        "  own KKT certificate (residual ≤ 1e-6), except on windows fastopt itself flags ill-posed",
        "  (status unbounded / ill_conditioned: the ratio has no finite optimum). Other cases check their",
        "  results against the bench's own arithmetic (see each case). A result failing parity is marked",
        "  **wrong** next to its time and listed under the case's parity failures.",
        "- Score = annualized slope/std (OLS slope per day of the cumulative-sum curve / sample std, ×√365),",
        "  computed by the bench's own numpy code (`bench/baselines/reference.py`), not by fastopt.",
        "  Gap = (best score of any method − score) / best.",
        "- A method predicted to exceed its budget is not run: it is listed as *skipped* with its",
        "  extrapolated time and how it was extrapolated.",
        "- numba compile time is measured apart, in fresh processes with `NUMBA_CACHE_DIR` set to an empty",
        "  temporary directory (cold), then the same directory again (warm cache).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['logical_cores']} logical cores, RAM {m['ram_gib']} GiB",
        f"- {m['platform']}, Python {m['python']}",
        f"- Load average (1, 5, 15 min) at start: {_fmt_load(payload['machine']['load_average_1_5_15'])},"
        f" at end: {_fmt_load(payload.get('load_average_end'))}. The machine is shared (2 cores, several"
        " people working): absolute times are noisy; ratios measured in the same case are more robust.",
        "- BLAS / thread pools (threadpoolctl): "
        + "; ".join(f"{p['internal_api']} {p['version']} ({p['prefix']}) {p['num_threads']} threads"
                    for p in m["threadpools"]),
        "- Thread environment: " + ", ".join(f"{k}={v}" for k, v in m["thread_env"].items()),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        "",
        "![time vs N](bench_scaling.png)",
        "",
    ]
    for case in payload["cases"]:
        parts.append(f"## {case['title']}")
        parts.append("")
        if case["status"] != "measured":
            parts.append(f"**Not measured**: {case['reason']}")
            parts.append("")
            continue
        if case["parity_failures"]:
            parts.append("**Parity failures:** " + "; ".join(case["parity_failures"]))
            parts.append("")
        for table in case["tables"]:
            parts.append(_markdown_table(Table(**table)))
            parts.append("")
        for note in case["notes"]:
            parts.append(f"- {note}")
        parts.append(f"\n_Case wall time: {case['elapsed_s']:.1f} s._\n")
    return "\n".join(parts).rstrip() + "\n"


def _fmt_load(load: Sequence[float] | None) -> str:
    return "n/a" if not load else ", ".join(f"{x:.2f}" for x in load)


def plot_scaling(payload: dict, path: Path) -> bool:
    """Log-log median time vs N per optimize method (one panel per T); False when nothing to plot."""
    records = [r for case in payload["cases"] if case["name"] == "optimize" and case["status"] == "measured"
               for r in case["records"]]
    if not records:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day_counts = sorted({r["n_days"] for r in records})
    fig, axes = plt.subplots(1, len(day_counts), figsize=(6.5 * len(day_counts), 5.6), squeeze=False)
    for ax, n_days in zip(axes[0], day_counts):
        sizes = sorted({r["n_strategies"] for r in records if r["n_days"] == n_days})
        for method in dict.fromkeys(r["method"] for r in records):
            by_n = {r["n_strategies"]: r for r in records if r["method"] == method and r["n_days"] == n_days}
            # NaN where the method did not run: the line breaks instead of bridging a failed size.
            measured = [by_n[n]["median_s"] if n in by_n and by_n[n].get("median_s") else np.nan for n in sizes]
            if all(np.isnan(measured)):
                continue
            line, = ax.plot(sizes, measured, marker="o", label=method)
            last = max(i for i, v in enumerate(measured) if not np.isnan(v))
            extrapolated = [(n, by_n[n]["extrapolated_s"]) for n in sizes[last + 1:]
                            if n in by_n and by_n[n].get("extrapolated_s")]
            if extrapolated:
                ax.plot([sizes[last], *[x for x, _ in extrapolated]], [measured[last], *[y for _, y in extrapolated]],
                        linestyle=":", marker="x", color=line.get_color())
        wrong = [(r["n_strategies"], r["median_s"]) for r in records
                 if r["n_days"] == n_days and r.get("status") == STATUS_WRONG and r.get("median_s")]
        if wrong:
            ax.scatter(*zip(*wrong), s=160, facecolors="none", edgecolors="red", linewidths=2,
                       label="parity failed (result wrong)", zorder=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("strategies N")
        ax.set_ylabel("median time per solve [s] (incl. Σ and g)")
        ax.set_title(f"optimize, T = {n_days} days (dotted × = extrapolated, not run)")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = {}, []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.legend([handles[label] for label in labels], labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True
