"""Where the recorded platform data lives: ``tests/fixtures`` inside the repository (see its README), so that the
suite runs from a fresh clone with nothing next to it."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MOODLE_4_5 = FIXTURES / "moodle-4.5"
