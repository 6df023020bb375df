"""The LMS rule of a plan version (``AppliedAccommodation``): the structured part Caseload applies to quizzes in the
LMS. Helpers for the plan editor (``plans.py`` checks access and commits): read, save on a draft, copy into a new
draft, compare two versions. No access decisions here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.domain.lms_actions import LmsRule
from lti_app.models import AppliedAccommodation


def row_of(session: Session, version_id: int | None) -> AppliedAccommodation | None:
    if version_id is None:
        return None
    return session.scalar(select(AppliedAccommodation).where(AppliedAccommodation.plan_version_id == version_id))


def rule_of(row: AppliedAccommodation | None) -> LmsRule | None:
    if row is None:
        return None
    return LmsRule(row.multiplier, row.extra_minutes, row.extra_attempts, bool(row.reduce_choices),
                   bool(row.window_guard))


def save(session: Session, version_id: int, rule: LmsRule | None) -> None:
    """Set (or with None remove) the rule of a draft version. The caller checked the version is a draft."""
    row = row_of(session, version_id)
    if rule is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = AppliedAccommodation(plan_version_id=version_id)
        session.add(row)
    row.multiplier, row.extra_minutes, row.extra_attempts = rule.multiplier, rule.extra_minutes, rule.extra_attempts
    row.reduce_choices, row.window_guard = rule.reduce_choices, rule.window_guard


def copy(session: Session, from_version_id: int | None, to_version_id: int) -> None:
    """A new draft starts with the rule in force, like its accommodations."""
    rule = rule_of(row_of(session, from_version_id))
    if rule is not None:
        save(session, to_version_id, rule)


def differs(session: Session, a_version_id: int | None, b_version_id: int | None) -> bool:
    return rule_of(row_of(session, a_version_id)) != rule_of(row_of(session, b_version_id))
