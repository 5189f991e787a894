"""The `fastopt` dispatcher: help, version, unknown commands and exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastopt import cli
from fastopt.errors import InputError, NothingToDo


def test_top_level_help_lists_commands_and_examples(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "commands:" in out and "examples:" in out
    for name in cli._available():
        assert f"  {name}" in out


def test_no_arguments_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage: fastopt" in capsys.readouterr().err


def test_unknown_command_is_exit_2_one_line(capsys):
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err
    assert len(err.strip().splitlines()) == 1


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fastopt ")


@pytest.mark.parametrize(
    ("error", "code"),
    [(InputError("bad value", path="x/stats.json"), 2), (NothingToDo("no strategies"), 3)],
)
def test_errors_map_to_exit_codes_without_traceback(monkeypatch, capsys, error, code):
    class FakeCommand:
        SUMMARY = "fake"

        @staticmethod
        def configure(parser):
            parser.add_argument("--flag", action="store_true")

        @staticmethod
        def run(args):
            raise error

    monkeypatch.setitem(cli.COMMANDS, "fake", "fake")
    monkeypatch.setattr(cli, "_load", lambda name: FakeCommand)
    assert cli.main(["fake"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip() == f"fastopt fake: error: {error}"


def _register_failing_command(monkeypatch, name: str, error: BaseException) -> None:
    """A command ``name`` whose run() raises ``error`` (FASTOPT_DEBUG unset)."""

    class Failing:
        SUMMARY = name

        @staticmethod
        def configure(parser):
            pass

        @staticmethod
        def run(args):
            raise error

    monkeypatch.setitem(cli.COMMANDS, name, name)
    monkeypatch.setattr(cli, "_load", lambda _: Failing)
    monkeypatch.delenv("FASTOPT_DEBUG", raising=False)


def test_internal_errors_are_one_line_unless_debugging(monkeypatch, capsys):
    _register_failing_command(monkeypatch, "broken", RuntimeError("boom"))
    assert cli.main(["broken"]) == 1
    assert "internal error: RuntimeError: boom" in capsys.readouterr().err
    monkeypatch.setenv("FASTOPT_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["broken"])


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "fastopt", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("fastopt ")


def test_out_of_memory_is_a_one_line_error_not_an_internal_error(monkeypatch, capsys):
    _register_failing_command(monkeypatch, "hungry", MemoryError("Unable to allocate 29.1 TiB"))
    assert cli.main(["hungry"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastopt hungry: error: out of memory: Unable to allocate 29.1 TiB")
    assert err.count("\n") == 1 and "internal error" not in err
