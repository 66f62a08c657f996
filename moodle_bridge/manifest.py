"""The manifest: every unit's roster, synced by one command on one state.

A TOML file of ``[[source]]`` tables::

    [[source]]
    name = "pendis"                       # optional: defaults to the plugin's name
    plugin = "pendis"                     # the unit plugin that reads the roster
    roster = "exports/pendis/*.csv"       # a path or a glob: the newest file wins
    assessments = "exports/pendis-assessments.csv"   # optional: manage enrolments too
    scope = ["PENDIS"]                    # optional: the units this roster speaks for

Relative paths are relative to the manifest's folder. A source whose files have not changed
since its last successful run is skipped; a source whose roster is missing is skipped with a
warning, never treated as an empty roster.
"""

from __future__ import annotations

import glob
import hashlib
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moodle_bridge.errors import ConfigError

__all__ = ["Manifest", "ManifestSource", "digest", "load_manifest", "newest"]


class ManifestSource(BaseModel):
    """One unit's roster (and assessments) in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    plugin: str
    roster: str
    assessments: str | None = None
    scope: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _named(self) -> ManifestSource:
        if not self.name:
            return self.model_copy(update={"name": self.plugin})
        return self

    def roster_path(self, base: Path) -> Path | None:
        """The roster file to use now (the newest match of a glob), or None when missing."""
        return newest(base, self.roster)

    def assessments_path(self, base: Path) -> Path | None:
        """The assessments file (the newest match of a glob), or None."""
        return newest(base, self.assessments) if self.assessments else None


class Manifest(BaseModel):
    """The sources of a manifest, in the order they run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: tuple[ManifestSource, ...] = Field(min_length=1)
    #: The folder relative paths are relative to (the manifest's own).
    base: Path = Path()

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        names = [s.name for s in self.source]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            msg = f"source names must be unique; give each a name: {', '.join(twice)}"
            raise ValueError(msg)
        return self


def load_manifest(path: Path) -> Manifest:
    """Read a manifest. Raises ConfigError naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read the manifest {path}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"the manifest {path} is not valid TOML: {exc}"
        raise ConfigError(msg) from None
    try:
        return Manifest.model_validate({**data, "base": path.resolve().parent})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg']}"
            for err in exc.errors()
        )
        msg = f"bad manifest {path}: {problems}"
        raise ConfigError(msg) from None


def newest(base: Path, pattern: str) -> Path | None:
    """The newest file (by modification time, then name) matching ``pattern`` under ``base``."""
    full = pattern if Path(pattern).is_absolute() else str(base / pattern)
    files = [Path(p) for p in glob.glob(full) if Path(p).is_file()]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


def digest(paths: Iterable[Path | None], facts: object = None) -> str:
    """A digest of the files' contents, in order, and of JSON-able ``facts``: equal digests,
    equal input."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(facts, sort_keys=True, default=str).encode("utf-8"))
    for path in paths:
        h.update(b"\0file\0")
        if path is None:
            continue
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
