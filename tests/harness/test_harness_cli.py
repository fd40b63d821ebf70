"""The ./compare command line rejects an --out that is an existing file before any task runs."""

import pytest
from harness import cli


def test_out_existing_file_exits_2(tmp_path, capsys):
    existing = tmp_path / "README.md"
    existing.write_text("not a folder\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--tier", "tiny", "--tasks", "eos", "--out", str(existing)])
    assert exit_info.value.code == 2
    assert f"--out: {existing} exists and is not a directory" in capsys.readouterr().err


def test_out_existing_file_left_unchanged(tmp_path):
    existing = tmp_path / "README.md"
    existing.write_text("not a folder\n")
    with pytest.raises(SystemExit):
        cli.main(["--tier", "tiny", "--tasks", "eos", "--out", str(existing)])
    assert existing.read_text() == "not a folder\n"


def test_out_existing_folder_accepted(tmp_path):
    args = cli.parse_args(["--out", str(tmp_path)])
    assert args.out == tmp_path


def test_out_missing_folder_accepted(tmp_path):
    args = cli.parse_args(["--out", str(tmp_path / "new")])
    assert args.out == tmp_path / "new"
