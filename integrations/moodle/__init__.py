"""Moodle clients (no Flask, no database). ``local_caseload/`` next to this package is the PHP companion plugin."""
