"""Dependency floors and the constraints file (issue #14 item 5): what CI tests is what production installs, and no
allowed version has a published advisory Caseload knows of."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ADVISORY_FLOORS = {
    # package: first version without a known advisory (the CVEs are named in pyproject.toml)
    "flask": "3.1.3", "werkzeug": "3.1.6", "jinja2": "3.1.6", "cryptography": "50.0.0", "requests": "2.33.0",
    "pyjwt": "2.12.0", "jwcrypto": "1.6.0", "gunicorn": "26.0.0", "tqdm": "4.66.3",
}


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.extend(extra)
    return [Requirement(d) for d in deps]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions only: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_dependency_is_pinned_in_constraints_within_what_pyproject_allows():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"


@pytest.mark.parametrize(("package", "floor"), sorted(ADVISORY_FLOORS.items()))
def test_no_allowed_version_is_below_the_advisory_floor(package, floor):
    req = next(r for r in _requirements() if canonicalize_name(r.name) == package)
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", ">", "==", "~=")]
    assert lows and min(lows) >= Version(floor), f"{req} allows versions below {floor}"
    assert _pins()[package] >= Version(floor)


def test_ci_and_the_production_install_use_the_constraints_file():
    assert "-c constraints.txt" in (ROOT / "scripts/test.sh").read_text()
    assert "pip install -c constraints.txt ." in (ROOT / "README.md").read_text()
