"""A unit plugin installed with pip into a fresh environment is discovered; a broken one is
reported and skipped.

The throwaway packages are built by pip itself from source directories with a
``pyproject.toml``, like a unit's real plugin. Their build backend is a few lines written next
to them (PEP 517 ``backend-path``) rather than setuptools: the setuptools these environments
carry (65.x) needs the separate ``wheel`` package to build anything, and it is not installed,
while installing it would need the network. What is under test is the installed metadata and
``importlib.metadata``, not the build tool.

The new environment is a venv without pip whose ``.pth`` file adds this interpreter's
site-packages behind its own, so moodle_bridge (an editable install), pydantic and pip are
importable there without any download. ``--system-site-packages`` would not do: it exposes the
base interpreter's packages, not those of the venv running the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

BACKEND = '''
"""A minimal PEP 517 backend: packs the listed packages and metadata into a pure wheel."""

import base64
import hashlib
import zipfile
from pathlib import Path

NAME = {name!r}
VERSION = {version!r}
PACKAGES = {packages!r}
ENTRY_POINTS = {entry_points!r}


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = NAME.replace("-", "_")
    info = f"{{dist}}-{{VERSION}}.dist-info"
    files = {{}}
    for package in PACKAGES:
        for path in sorted(Path(package).rglob("*.py")):
            files[path.as_posix()] = path.read_bytes()
    files[f"{{info}}/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    ).encode()
    files[f"{{info}}/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: test-backend\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n"
    )
    lines = ["[moodle_bridge.units]"] + [f"{{k}} = {{v}}" for k, v in ENTRY_POINTS.items()]
    files[f"{{info}}/entry_points.txt"] = ("\\n".join(lines) + "\\n").encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{name}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{info}}/RECORD,,")
    files[f"{{info}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{{dist}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "{name}"
version = "{version}"
"""

GOOD_PLUGIN = '''
"""A unit's own plugin, as a unit would write it."""

from moodle_bridge.roster.generic import parse_generic_row
from moodle_bridge.units import UnitMapper


class DemoMapper(UnitMapper):
    code = "BIMAS_DEMO"
    name = "Direktorat Jenderal Bimbingan Masyarakat Demo"

    def map_row(self, source_name, row):
        return parse_generic_row(source_name, row)
'''

BROKEN_PLUGIN = """
raise ImportError("this plugin needs a library that is not installed")
"""

DISCOVER = """
import json
from moodle_bridge.units import discover_units

result = discover_units()
print(json.dumps({
    "units": {name: type(mapper).__name__ for name, mapper in result.units.items()},
    "problems": [problem.model_dump() for problem in result.problems],
    "installed": [unit.model_dump() for unit in result.installed],
}))
"""


def make_package(
    root: Path, name: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
) -> Path:
    """A source tree pip can build: pyproject.toml, the in-tree backend, one package each."""
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT.format(name=name, version=version))
    backend = BACKEND.format(
        name=name, version=version, packages=list(modules), entry_points=entry_points
    )
    (root / "backend.py").write_text(backend)
    for package, code in modules.items():
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(textwrap.dedent(code))
    return root


def make_environment(path: Path) -> Path:
    """A fresh venv that also sees this interpreter's packages; returns its python."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir (not a bare path) so the editable install's own .pth finder runs too.
    lines = [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages()]
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(lines) + "\n")
    return python


@pytest.mark.skipif(
    importlib.util.find_spec("pip") is None, reason="pip is not installed in the test environment"
)
def test_pip_installed_plugin_is_discovered_and_broken_one_skipped(tmp_path: Path) -> None:
    good = make_package(
        tmp_path / "good",
        "moodle-bridge-unit-demo",
        "1.2.3",
        {"moodle_bridge_unit_demo": GOOD_PLUGIN},
        {"demo": "moodle_bridge_unit_demo:DemoMapper"},
    )
    broken = make_package(
        tmp_path / "broken",
        "moodle-bridge-unit-broken",
        "0.0.1",
        {"moodle_bridge_unit_broken": BROKEN_PLUGIN},
        {"broken": "moodle_bridge_unit_broken:Mapper"},
    )
    python = make_environment(tmp_path / "env")
    # --isolated: no pip configuration or environment (indexes, constraints) applies.
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--isolated", "--no-index", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "-q", str(good), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr

    found = subprocess.run(
        [str(python), "-c", DISCOVER], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(found.stdout)

    assert result["units"]["demo"] == "DemoMapper"
    demo = next(unit for unit in result["installed"] if unit["name"] == "demo")
    assert demo["distribution"] == "moodle-bridge-unit-demo"
    assert demo["version"] == "1.2.3"
    assert demo["code"] == "BIMAS_DEMO"
    assert demo["problem"] is None

    assert "broken" not in result["units"]
    [problem] = [p for p in result["problems"] if p["name"] == "broken"]
    assert problem["distribution"] == "moodle-bridge-unit-broken"
    assert "ImportError: this plugin needs a library that is not installed" in problem["reason"]

    # The built-in plugins, registered by moodle-bridge itself, are found alongside.
    assert {"generic", "pendis", "bimas_islam"} <= set(result["units"])

    # And the plugin was installed into the new environment only.
    assert subprocess.run([sys.executable, "-c", "import moodle_bridge_unit_demo"],
                          capture_output=True, check=False).returncode != 0  # fmt: skip
