"""Where a report comes from: the inputs' fingerprints (files by content, SQL sources by their query's result, passwords never written), the library versions and the git commit, so that a rerun knows it is up to date and a reader knows what was used.

Public: source_paths, inputs_fingerprint, data_key, cached_data_end, library_versions, git_commit.
Reads: the data config's sources, reports/<quarter>/manifest.json. Writes: nothing.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from segment import __version__, paths
from segment.periods import is_period
from segment.plumbing.atomic import (
    sha256_file,
)

#: the report notebooks, in the order they are built (notebooks/<name>.ipynb)
NOTEBOOKS = ("grading", "review", "calibration")

_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^/@:]*):([^@/]*)@")


_ENV_ONLY = re.compile(r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})*")


def _url_as_written(url: str) -> str:
    """A SQL source's URL for the manifest: as written in the data config, ``${VAR}`` unexpanded (the
    environment's values — credentials — never reach a manifest); a password written literally into the
    URL (which the README advises against) is masked."""
    m = _URL_PASSWORD.match(url)
    if m and m.group(2) and not _ENV_ONLY.fullmatch(m.group(2)):
        return f"{m.group(1)}:***@{url[m.end():]}"
    return url


def _sql_fingerprint(name: str, src, loaded) -> tuple[str, str]:
    """A SQL source as (manifest key, sha256): the key names the table and its URL as written; the hash
    covers the URL, the query and the rows the query returned (``TableSet.fingerprint``, computed where the
    tables are), so a changed database makes the quarter stale. File sources are fingerprinted by their
    bytes, before any table is read."""
    import hashlib

    url = _url_as_written(src.sql.url)
    material = json.dumps({"url": url, "query": src.sql.query, "table": loaded.tables.fingerprint(name)},
                          ensure_ascii=False)
    return f"{url}#{name}", hashlib.sha256(material.encode("utf-8")).hexdigest()


def source_paths(data: Path, config) -> dict[str, Path]:
    """The file sources of a data config: table name → resolved path."""
    return {name: (data.parent / src.path).resolve() for name, src in config.tables.items() if src.path}


def has_sql(config) -> bool:
    return any(src.sql is not None for src in config.tables.values())


def inputs_fingerprint(data: Path, scheme_path: Path, loaded=None, *, config=None) -> dict:
    """Every input of a quarter's reports as {key: sha256}: the data config, the scheme, each file source,
    the notebooks and the report params, all by the sha256 of their bytes — no table is read for them,
    so this runs before ``load_data``. SQL sources are fingerprinted from their loaded query result
    (``_sql_fingerprint``): ``loaded`` is needed only when the config (``config``, default
    ``loaded.config``) has one."""
    config = config if config is not None else loaded.config
    sources = source_paths(data, config)
    extra = [p for p in [paths.notebooks_dir() / f"{nb}.ipynb" for nb in NOTEBOOKS] +
             [paths.params_file("reports.yaml"), paths.params_file("calibration.yaml")] if p.is_file()]
    if config.indicators_file is not None:  # the declared indicators' own file
        extra.append(config.indicators_file)
    hashed = [data, scheme_path, *sources.values(), *extra]
    digest = {str(p): sha256_file(p) for p in dict.fromkeys(hashed)}
    files = {str(data): digest[str(data)], str(scheme_path): digest[str(scheme_path)]}
    for name, src in config.tables.items():
        if src.path:
            files[str(sources[name])] = digest[str(sources[name])]
        elif src.sql is not None:
            if loaded is None:
                raise ValueError(f"tables.{name} is a SQL source: fingerprint it from the loaded data")
            key, value = _sql_fingerprint(name, src, loaded)
            files[key] = value
    for p in extra:
        files[str(p)] = digest[str(p)]
    return files


def data_key(data: Path, config, fingerprints: dict) -> str | None:
    """What the data's end depends on: the data config's and the file sources' bytes (taken from
    ``fingerprints``) and the package version (validation may drop rows). None with a SQL source — a
    database is not fingerprinted without querying it."""
    import hashlib

    if has_sql(config):
        return None
    keys = [str(data), *map(str, source_paths(data, config).values())]
    material = json.dumps({"package_version": __version__, "inputs": {k: fingerprints[k] for k in keys}})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def cached_data_end(reports_dir: Path, key: str | None) -> pd.Timestamp | None:
    """The data's end recorded by an earlier build from the very same data (``manifest.json`` of any
    quarter: ``data_end.key`` equal to ``key``), so that the default quarter is found without loading
    the tables. None when no build recorded it."""
    if key is None or not reports_dir.is_dir():
        return None
    for manifest in sorted(reports_dir.glob("*/manifest.json"), reverse=True):
        if not is_period(manifest.parent.name):
            continue
        try:
            end = json.loads(manifest.read_text(encoding="utf-8")).get("data_end") or {}
            if isinstance(end, dict) and end.get("key") == key and end.get("date"):
                return pd.Timestamp(end["date"])
        except (OSError, ValueError, TypeError):
            continue
    return None


def library_versions() -> dict[str, str]:
    """The installed version of every library segment declares (pyproject's dependencies): what
    shaped a report, recorded in its manifest.json."""
    from importlib import metadata

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for req in metadata.requires("segment") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.root(), capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
