"""Size and depth, by class: YAML alias bombs and deep nesting, and very deep or long conditions, end
in a clear error naming the file or the condition — never a hang or a RecursionError."""
from __future__ import annotations

import pytest

from segment.grading.conditions import parse
from segment.errors import ConditionError, ConfigError
from segment.plumbing.yamlfile import read_yaml


def test_alias_bomb_and_deep_yaml_are_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bomb\.yaml.*more than 50 aliases"):
        read_yaml(bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * 60 + "1" + "]" * 60 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deep\.yaml.*nested more than 40 levels deep"):
        read_yaml(deep)
    fine = tmp_path / "fine.yaml"
    fine.write_text("bands: &b [1, 2]\nagain: *b\n", encoding="utf-8")
    assert read_yaml(fine) == {"bands": [1, 2], "again": [1, 2]}


@pytest.mark.parametrize("text", ["(" * 600 + "x > 1" + ")" * 600, " and ".join(["x > 1"] * 5000),
                                  "-" * 3000 + "x > 1", "not " * 3000 + "x > 1"])
def test_very_deep_or_long_conditions_are_refused(text):
    with pytest.raises(ConditionError, match="nests more than 100 levels deep"):
        parse(text)


def test_long_but_reasonable_conditions_still_work():
    import pandas as pd

    c = parse(" and ".join(f"x > {i}" for i in range(60)))
    assert c.evaluate(pd.DataFrame({"x": [10.0, 100.0]})).tolist() == [False, True]
