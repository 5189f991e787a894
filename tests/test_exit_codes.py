"""One exit-code table: README "Commands", every `--help`, and the commands that used to deviate."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fastopt.cli import COMMANDS, main
from fastopt.errors import (
    EXIT_CODES,
    EXIT_FAILURE,
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
    FastoptError,
    InputError,
    NothingToDo,
)

REPO = Path(__file__).resolve().parents[1]
START = np.datetime64("2024-01-01")


def table_rows(text: str) -> dict[int, str]:
    """code -> meaning of the `  N  meaning` lines of EXIT_CODES."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^  (\d)  (.+)$", text, re.MULTILINE)}


def readme_rows() -> dict[int, str]:
    """code -> meaning of the README "Commands" section's exit table."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d) \| (.+) \|$", section, re.MULTILINE)}


def short(meaning: str) -> str:
    return meaning.split(" (", 1)[0]


def test_the_table_has_the_five_codes_and_the_constants_match():
    rows = table_rows(EXIT_CODES)
    assert sorted(rows) == [0, 1, 2, 3, 4]
    assert [short(rows[k]) for k in range(5)] == [
        "ok", "the operation failed", "bad input or usage", "nothing to do", "status unhealthy"]
    assert (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOTHING, EXIT_UNHEALTHY) == (0, 1, 2, 3, 4)
    assert (FastoptError("x").exit_code, InputError("x").exit_code, NothingToDo("x").exit_code) == (1, 2, 3)
    from reconciler.health import EXIT_UNHEALTHY as health_unhealthy

    assert health_unhealthy == EXIT_UNHEALTHY


def test_readme_table_is_the_same_table():
    readme, helps = readme_rows(), table_rows(EXIT_CODES)
    assert sorted(readme) == sorted(helps) == [0, 1, 2, 3, 4]
    for code in helps:
        assert readme[code].startswith(short(helps[code])), (code, readme[code], helps[code])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_ends_with_the_table(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(EXIT_CODES.rstrip()), out[-600:]
    # no second, diverging table ("exit codes: 0 ok, ...") left in the epilog
    assert out.lower().count("exit codes") == 1


def test_top_level_help_shows_the_table_and_init(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert EXIT_CODES.rstrip() in out and "init" in out


def _write_strategies(root: Path, n: int = 4, days: int = 120) -> None:
    rng = np.random.default_rng(0)
    dates = [str(START + np.timedelta64(k, "D")) for k in range(days)]
    for j in range(n):
        folder = root / f"s{j}"
        folder.mkdir(parents=True)
        returns = (rng.normal(5e-4, 0.01, days)).tolist()
        (folder / "stats.json").write_text(json.dumps({"strategy": f"s{j}", "daily_dates": dates,
                                                       "daily_returns": returns}))


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_strategies(tmp_path / "strategies")
    return tmp_path


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_allocator_module_without_allocate_is_bad_input(workspace, capsys, command):
    plugin = workspace / "noalloc.py"
    plugin.write_text("def weights(returns_window, names):\n    return None\n")
    extra = ["--target-vol", "0.3", "--dry-run"] if command == "optimize" else ["--lookback", "30",
                                                                                "--random-n", "5"]
    code = main([command, "--strategies", "strategies", "--allocator", str(plugin), *extra])
    assert code == EXIT_USAGE
    assert "defines no allocate" in _one_line(capsys.readouterr().err)


def test_blaveclaw_allocator_folder_without_allocate_is_bad_input(workspace, capsys):
    folder = workspace / "allocators" / "empty"
    folder.mkdir(parents=True)
    (folder / "allocator.py").write_text("DISPLAY_NAME = 'nothing here'\n")
    code = main(["optimize", "--strategies", "strategies", "--target-vol", "0.3", "--allocator", "empty",
                 "--dry-run"])
    assert code == EXIT_USAGE
    assert "defines no allocate" in _one_line(capsys.readouterr().err)


def test_an_allocator_that_raises_is_still_a_failed_operation(workspace, capsys):
    plugin = workspace / "boom.py"
    plugin.write_text("def allocate(returns_window, names):\n    raise RuntimeError('nope')\n")
    code = main(["optimize", "--strategies", "strategies", "--target-vol", "0.3", "--allocator", str(plugin),
                 "--dry-run"])
    assert code == EXIT_FAILURE
    assert "nope" in _one_line(capsys.readouterr().err)
