"""deploy/: systemd units (parsed as INI with the keys they need; `systemd-analyze verify` when present),
the env-file example and the Dockerfile."""
from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastopt import cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ["fastopt-reconciler.service", "fastopt-weekly.service", "fastopt-weekly.timer"]
INSTALLED_FASTOPT = "/opt/fastopt/.venv/bin/fastopt"


def parse(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                          comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


def exec_lines(name: str) -> list[list[str]]:
    """Every ExecStart= of a unit (repeated keys included), split like a shell would."""
    return [shlex.split(line.partition("=")[2]) for line in (DEPLOY / name).read_text().splitlines()
            if line.startswith("ExecStart=")]


def test_reconciler_unit_has_the_required_keys():
    unit = parse("fastopt-reconciler.service")
    service = unit["Service"]
    assert unit["Unit"]["Description"] and "network-online.target" in unit["Unit"]["After"]
    assert service["Restart"] == "on-failure" and float(service["RestartSec"]) > 0
    assert service["RestartPreventExitStatus"] == "2"  # bad input does not fix itself by restarting
    assert service["KillSignal"] == "SIGTERM" and service["User"] == "fastopt"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/fastopt/fastopt.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    [argv] = exec_lines("fastopt-reconciler.service")
    assert argv[:2] == [INSTALLED_FASTOPT, "reconcile"] and "--once" not in argv
    assert {"--config", "--strategies", "--log-file"} <= set(argv)
    # the options of the unit are real options of `fastopt reconcile`
    options = [a.split("=")[0] for a in argv[2:] if a.startswith("--")]
    parser = cli.build_parser("reconcile")
    known = {flag for action in parser._actions for flag in action.option_strings}
    assert set(options) <= known, set(options) - known


def test_weekly_timer_runs_backtest_then_optimize():
    timer = parse("fastopt-weekly.timer")
    assert timer["Timer"]["Unit"] == "fastopt-weekly.service" and timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["OnCalendar"].startswith("Sun ")
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = parse("fastopt-weekly.service")
    assert service["Service"]["Type"] == "oneshot"
    steps = exec_lines("fastopt-weekly.service")
    assert [argv[1] for argv in steps] == ["backtest", "optimize"]
    for argv in steps:
        parser = cli.build_parser(argv[1])
        known = {flag for action in parser._actions for flag in action.option_strings}
        assert {a for a in argv[2:] if a.startswith("--")} <= known


def test_no_secret_in_units_and_the_env_example_names_every_variable():
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        assert not re.search(r"(API_KEY|SECRET|PASSWORD|TOKEN)\s*=", text), name
    env = (DEPLOY / "fastopt.env.example").read_text()
    names = {line.split("=", 1)[0] for line in env.splitlines() if line and not line.startswith("#")}
    assert {"BINANCEUSDM_API_KEY", "BINANCEUSDM_SECRET", "FASTOPT_TELEGRAM_TOKEN", "FASTOPT_RECONCILE_ARGS",
            "FASTOPT_OPTIMIZE_ARGS"} <= names
    assert all(line.split("=", 1)[1] == "" for line in env.splitlines()
               if re.match(r"[A-Z_]+(API_KEY|SECRET|TOKEN)=", line))  # no value shipped


def test_dockerfile_is_slim_non_root_with_fastopt_entrypoint():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith(("#", " "))]
    keys = [i[0] for i in instructions]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", dict(instructions)["FROM"].strip())
    user = [i[1] for i in instructions if i[0] == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keys.index("USER") > max(i for i, k in enumerate(keys) if k == "RUN")  # installs as root, runs as user
    assert dict(instructions)["ENTRYPOINT"].strip() == '["fastopt"]'
    assert any(i[0] == "RUN" and "pip install ." in i[1] for i in instructions)
    assert not re.search(r"(API_KEY|SECRET|TOKEN)", " ".join(i[1] for i in instructions if i[0] in ("ENV", "ARG")))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed here (apt-get install systemd); the INI checks above "
                           "still ran")
def test_systemd_analyze_verify(tmp_path):
    """`systemd-analyze verify` on copies whose ExecStart names this environment's fastopt (verify requires an
    existing executable); any complaint about our units fails, even the ones systemd only warns about."""
    fastopt = Path(sys.executable).with_name("fastopt")
    assert fastopt.exists()
    for name in UNITS:
        (tmp_path / name).write_text((DEPLOY / name).read_text().replace(INSTALLED_FASTOPT, str(fastopt)))
    proc = subprocess.run(["systemd-analyze", "verify", *[str(tmp_path / n) for n in UNITS]],
                          capture_output=True, text=True, timeout=60)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if any(n in line for n in UNITS) or "ignoring" in line.lower()]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr
