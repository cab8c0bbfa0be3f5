"""The command line: help that teaches, exit codes, no traceback for user errors."""

import subprocess
import sys

import pytest

from sonotype.cli.main import build_parser, main

SUBCOMMANDS = [
    "example",
    "ingest",
    "shards",
    "train",
    "encode",
    "cluster",
    "report",
    "demo",
    "config",
]


def test_top_level_help_lists_every_stage(capsys: pytest.CaptureFixture[str]):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in text
    assert "Exit codes" in text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_subcommand_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert f"usage: sonotype {command}" in text
    assert "examples:" in text


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from sonotype.cli.main import build_parser; build_parser(); "
        "names = ('torch', 'dask', 'zarr', 'sklearn', 'webdataset'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["fly"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bad_config_exits_2_with_one_clear_message(tmp_path, capsys: pytest.CaptureFixture[str]):
    code = main(["example", str(tmp_path / "x"), "--set", "file_s=-3", "--set", "colour=blue"])
    err = capsys.readouterr().err
    assert code == 2
    assert "file_s: got -3; expected greater than or equal to 2" in err
    assert "colour: unknown setting" in err
    assert "Traceback" not in err


def test_bad_config_from_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sonotype", "example", str(tmp_path / "x"), "--set", "years=[]"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "years: got []" in result.stderr
    assert "Traceback" not in result.stderr


def test_verbosity_flags_are_accepted_before_and_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["-v", "example", "x"]).verbose == 1
    assert parser.parse_args(["example", "x", "-vv"]).verbose == 2
    assert parser.parse_args(["example", "x", "-q"]).quiet is True


def test_config_validate_checks_all_shipped_configs(capsys: pytest.CaptureFixture[str]):
    assert main(["config", "validate"]) == 0


def test_config_validate_reports_a_bad_file(tmp_path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "bad.yaml"
    bad.write_text("file_s: many\n")
    assert main(["config", "validate", str(bad), "--kind", "example"]) == 2
    assert "file_s: got 'many'" in capsys.readouterr().err


def test_config_show_prints_resolved_yaml(capsys: pytest.CaptureFixture[str]):
    assert main(["config", "show", "example", "--set", "file_s=42"]) == 0
    out = capsys.readouterr().out
    assert "file_s: 42" in out
    assert "timezone: America/Cayenne" in out
