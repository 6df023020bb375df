"""The production set-up restarts whatever exits (issue #14: a worker that died was never started again): the
systemd units in config/systemd run the README's commands and come back after any exit, however often."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "config" / "systemd"
COMMANDS = {
    "caseload-web.service": ["gunicorn", "-c", "config/gunicorn.conf.py", "lti_app:create_app()"],
    "caseload-worker.service": ["celery", "-A", "lti_app.celery_worker", "worker"],
    "caseload-beat.service": ["celery", "-A", "lti_app.celery_worker", "beat"],
}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_every_process_has_a_unit_and_nothing_else_is_there() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unit_restarts_after_any_exit_without_a_start_limit(name: str) -> None:
    unit = _unit(name)
    assert unit["Service"]["Restart"] == "always"
    assert float(unit["Service"]["RestartSec"]) <= 5
    assert unit["Unit"]["StartLimitIntervalSec"] == "0", "systemd would stop restarting after 5 quick failures"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unit_runs_the_readme_command_with_the_settings_file(name: str) -> None:
    unit = _unit(name)
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == COMMANDS[name][0]
    assert all(part in argv for part in COMMANDS[name][1:]), argv
    assert unit["Service"]["EnvironmentFile"] == "/etc/caseload/caseload.env"
    assert unit["Service"]["User"] != "root"
    readme = (UNITS.parents[1] / "README.md").read_text()
    assert f"config/systemd/{name}" in readme or "config/systemd/*.service" in readme
