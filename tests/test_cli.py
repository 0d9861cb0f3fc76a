"""The command line's promise: exit 2 with one `error:` message for bad input, 1 with one line naming
the saved traceback for a bug, never a wall of traceback."""
from __future__ import annotations

import re
from pathlib import Path

from segment import cli


def test_a_bug_is_one_line_naming_the_saved_traceback(tmp_path, monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("something the code did not expect")

    monkeypatch.setattr(cli, "run", boom)
    monkeypatch.setenv("SEGMENT_TMPDIR", str(tmp_path))
    assert cli.main(["indicators"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    found = re.fullmatch(r"bug: segment stopped on an unexpected RuntimeError; the traceback is in (\S+) — please "
                         r"report it with the command you ran\n", err)
    assert found, err
    saved = Path(found.group(1))
    assert saved.parent == tmp_path and "RuntimeError: something the code did not expect" in saved.read_text()


def test_bad_input_is_one_error_line_with_the_prefix_once(tmp_path, capsys):
    missing = tmp_path / "nowhere.yaml"
    assert cli.main(["validate", "--data", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {missing}") and "error: error" not in err and "Traceback" not in err
