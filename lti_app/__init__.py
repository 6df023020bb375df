"""Caseload: accommodations, case notes and rosters inside Canvas and Moodle (LTI 1.3)."""

from lti_app.app import create_app

__all__ = ["create_app"]
