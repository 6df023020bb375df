"""The demo district and the practice LMS (development, demo and tests only).

Production code never imports this package (an import-linter contract in ``pyproject.toml``); the application
factory registers the practice LMS pages only when ``CASELOAD_PRACTICE`` is on, and ``caseload demo`` seeds the
district.
"""
