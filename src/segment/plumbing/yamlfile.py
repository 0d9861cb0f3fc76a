"""YAML parameter files read strictly: duplicate keys refused, errors naming the file, the key and the line, pydantic's messages in words.

Public: read_yaml, load_params, pydantic_error.
Reads: the YAML file it is given. Writes: nothing.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from segment.errors import ConfigError


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no Python tags) that also refuses duplicate keys instead of keeping the last,
    more than ``MAX_ALIASES`` aliases (an alias bomb expands exponentially) and nesting deeper than
    ``MAX_DEPTH`` levels (no params file needs either)."""

    MAX_ALIASES, MAX_DEPTH = 50, 40

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > self.MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {self.MAX_ALIASES} aliases (*name)",
                                                  self.peek_event().start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {self.MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def no_duplicate_keys(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1}); keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """Read a params file with a safe loader; a YAML error names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "file not found", "check the path (relative paths are from the current folder)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})", "save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "duplicate key" in problem:
            fix = "keep one of the two keys (YAML keeps only the last, silently)"
        elif "\\t" in problem or "tab" in problem:
            fix = "indent with spaces, not tabs"
        elif "aliases" in problem or "levels deep" in problem:
            fix = "write the values out: a params file needs neither many aliases nor deep nesting"
        elif "could not determine a constructor" in problem:
            fix = "remove the `!!` tag: params files hold plain values only"
        else:
            fix = "fix the YAML syntax at that line"
        raise ConfigError(path, None, f"invalid YAML at {where}{problem}", fix) from None
    except (ValueError, OverflowError) as e:  # the timestamp constructor: `as_of: 2026-02-30`
        where = ""
        try:
            for node in _scalar_nodes(yaml.compose(text, Loader=yaml.SafeLoader)):
                if node.tag == "tag:yaml.org,2002:timestamp":
                    try:
                        yaml.SafeLoader("").construct_yaml_timestamp(node)
                    except (ValueError, OverflowError):
                        where = f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: {node.value!r}: "
                        break
        except yaml.YAMLError:
            pass
        raise ConfigError(path, None, f"invalid value at {where}{e}", "write a date that exists, as YYYY-MM-DD") from None


def _scalar_nodes(node):
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for n in node.value:
            yield from _scalar_nodes(n)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _scalar_nodes(k)
            yield from _scalar_nodes(v)


def pydantic_error(path: str | Path, err: ValidationError) -> ConfigError:
    """The first pydantic error as a ConfigError naming the key path."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    # model-level checks write "key.path: problem"; lift the key path out
    m = re.match(r"^([A-Za-z0-9_.\-]+): (.*)$", msg, re.S)
    if m and first["type"] == "value_error":
        key = ".".join(filter(None, [key, m.group(1)]))
        msg = m.group(2)
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
        fix = "remove it or check its spelling"
    elif first["type"] == "literal_error":
        fix = msg.replace("Input should be", "write one of")
        msg = f"invalid value {first.get('input')!r}"
    elif first["type"] == "missing":
        fix = "add it (the README's data config and scheme tables list every key)"
    elif first["type"] != "value_error":   # greater_than, float_parsing …: pydantic says what is wrong, not what to do
        fix = "correct the value at that key (the README describes every key)"
    else:
        fix = None
    if key:
        key = key.replace(".[key]", "")   # a bad mapping key: `tables.orders`, not `tables.orders.[key]`
    more = len(err.errors()) - 1
    if more:
        msg += f" (and {more} more problem(s) in this file)"
    return ConfigError(path, key, msg, fix)


def load_params(path: str | Path, model, problem: str, fix: str, empty_ok: bool = False):
    """A params file validated by a pydantic ``model``; every error names the file and the key path.
    ``problem`` / ``fix``: the message when the file is not a mapping (an empty file reads as {} when
    ``empty_ok``)."""
    raw = read_yaml(path)
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, problem, fix)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise pydantic_error(path, e) from None
