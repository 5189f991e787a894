"""``python -m bench``: run the benchmark cases and write the reports.

Writes ``latest.json`` (machine-readable results), ``BENCHMARKS.md`` (tables, machine,
method) and ``bench_scaling.png`` (log-log time vs N). By default into the repo
(``bench/results/latest.json``, ``docs/BENCHMARKS.md``, ``docs/bench_scaling.png``);
``--out DIR`` puts all three in DIR instead (tests use a temp dir).
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.cases import CASES, BenchContext, Unavailable
from bench.headlines import headlines
from bench.runner import REPO_ROOT, CaseResult, code_version, machine_info, not_measured, plot_scaling, render_markdown, write_json

EPILOG = """examples:
  python -m bench                      # full suite (< 20 min on 2 cores), writes docs/ and bench/results/
  python -m bench --quick              # representative subset in < 2 min
  python -m bench --only optimize,load --out /tmp/bench
  python -m bench --quick --fail-on-parity   # exit 1 if any result is wrong
  make bench / make bench-quick
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and tight budgets (the test suite runs this)")
    parser.add_argument("--only", default=None, metavar="CASE[,CASE]",
                        help=f"run only these cases (of: {', '.join(CASES)})")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write latest.json, BENCHMARKS.md and bench_scaling.png into DIR "
                             "(default: bench/results/ and docs/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generated universe (default 0)")
    parser.add_argument("--render-from", type=Path, default=None, metavar="JSON",
                        help="do not run: re-render BENCHMARKS.md and the plot from a saved latest.json")
    parser.add_argument("--fail-on-parity", action="store_true",
                        help="exit 1 when any parity check failed (default: report it and exit 0)")
    args = parser.parse_args(argv)
    if args.only:
        args.cases = [c.strip() for c in args.only.split(",") if c.strip()]
        unknown = [c for c in args.cases if c not in CASES]
        if unknown:
            parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    else:
        args.cases = list(CASES)
    return args


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_case(name: str, ctx: BenchContext) -> CaseResult:
    module = importlib.import_module(CASES[name])
    start = time.perf_counter()
    try:
        result = module.run(ctx)
    except Unavailable as exc:
        result = not_measured(name, module.TITLE, str(exc))
    except Exception as exc:  # one broken case must not lose the others' results
        _log(f"{name} crashed:\n{traceback.format_exc()}")
        result = not_measured(name, module.TITLE, f"the case crashed: {type(exc).__name__}: {exc}")
    result.elapsed_s = time.perf_counter() - start
    return result


def command_line(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python -m bench"]
    if args.quick:
        parts.append("--quick")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.seed:
        parts.append(f"--seed {args.seed}")
    return " ".join(parts) + "   # or: make bench"


def _outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    if args.out is not None:
        return args.out / "latest.json", args.out / "BENCHMARKS.md", args.out / "bench_scaling.png"
    return (REPO_ROOT / "bench" / "results" / "latest.json", REPO_ROOT / "docs" / "BENCHMARKS.md",
            REPO_ROOT / "docs" / "bench_scaling.png")


def write_reports(payload: dict, md_path: Path, png_path: Path) -> bool:
    """BENCHMARKS.md and the scaling plot from a results payload; True if a plot was drawn."""
    plotted = plot_scaling(payload, png_path)
    markdown = render_markdown(payload, command=payload.get("command", ".venv/bin/python -m bench   # or: make bench"),
                               headlines=headlines(payload))
    if not plotted:
        markdown = markdown.replace("![time vs N](bench_scaling.png)", "_(no optimize timings in this run: no plot)_")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from fastopt.files.atomic import atomic_write_text

        atomic_write_text(md_path, markdown)
    except ImportError:  # pragma: no cover
        md_path.write_text(markdown)
    return plotted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    json_path, md_path, png_path = _outputs(args)
    if args.render_from is not None:
        payload = json.loads(args.render_from.read_text())
        write_reports(payload, md_path, png_path)
        _log(f"re-rendered {md_path} from {args.render_from}")
        return 0
    started = datetime.now(timezone.utc)
    start = time.perf_counter()
    ctx = BenchContext(quick=args.quick, seed=args.seed, log=_log)
    payload = {"started_at": started.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick, "seed": args.seed,
               "cases_selected": args.cases, "machine": machine_info(), "code": code_version(), "cases": []}
    try:
        for name in args.cases:
            _log(f"case {name} ...")
            result = run_case(name, ctx)
            _log(f"case {name}: {result.status} in {result.elapsed_s:.1f} s"
                 + (f" ({result.reason})" if result.reason else ""))
            payload["cases"].append(result.to_json())
    finally:
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    payload["elapsed_s"] = time.perf_counter() - start
    payload["load_average_end"] = list(__import__("os").getloadavg())
    payload["command"] = command_line(args)
    write_json(json_path, payload)
    plotted = write_reports(payload, md_path, png_path)
    failures = [f for case in payload["cases"] for f in case["parity_failures"]]
    _log(f"done in {payload['elapsed_s']:.0f} s: {json_path}, {md_path}" + (f", {png_path}" if plotted else ""))
    for failure in failures:
        _log(f"PARITY FAILURE: {failure}")
    return 1 if (failures and args.fail_on_parity) else 0


if __name__ == "__main__":
    sys.exit(main())
