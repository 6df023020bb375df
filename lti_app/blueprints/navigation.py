"""The tool's header navigation: the pages a person may use, and only those (issue #13, "every page reachable from the
header of the roles that may use it; no link that answers 403 to the person it is shown to").

Each entry is shown under the same rule its view enforces (``roles.is_support_staff`` for the caseload pages,
``roles.is_admin`` for the school-wide ones, a course launch for the course panel), so a link in the header never
answers 403. "Administration" and "Alerts" are added by their own blueprints (admin, alerts). Computed lazily, once
per request: a page that does not render the header pays nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, g, request
from sqlalchemy.exc import SQLAlchemyError

from lti_app.auth import app_url
from lti_app.db import get_session
from lti_app.domain.vocab import GrantRole, LaunchRole
from lti_app.services.access import roles
from lti_app.services.alerts import inbox
from lti_app.services.casework.panel import PLAN_TYPE_LABELS


@dataclass(frozen=True)
class HeaderLink:
    endpoint: str
    label: str
    url: str
    current: bool


# (endpoint, label, who): who is "course" (a course launch as teacher/TA), "support" (support staff), "lms_report"
# (a case manager or an administrator: lms_actions._report_scope) or "admin".
ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("panels.course", "Accommodations", "course"),
    ("casework.home", "My caseload", "support"),
    ("deadlines.caseload_deadlines", "Deadlines", "support"),
    ("panels.question_queue", "Questions", "support"),
    ("casework.services_owed", "Services owed", "support"),
    ("lms_actions.verification", "LMS check", "lms_report"),
    ("deadlines.school_deadlines", "Deadlines by school", "admin"),
    ("deadlines.calendar", "Reporting calendar", "admin"),
)


def _header_facts() -> tuple[frozenset[str], int] | None:
    """The viewer's grants and unread alerts, read together once per request (``inbox.header_facts``: one statement
    for the header's links and its unread count); None without a viewer or while the database is down (an error
    page still renders)."""
    viewer = g.get("viewer")
    if viewer is None:
        return None
    if "_header_facts" not in g:
        try:
            g._header_facts = inbox.header_facts(get_session(), viewer.person_id)
        except SQLAlchemyError:
            return None
    facts: tuple[frozenset[str], int] = g._header_facts
    return facts


def unread_alerts() -> int:
    """The header's unread-alerts count, from the same read as its links."""
    facts = _header_facts()
    return facts[1] if facts else 0


def _allowed() -> dict[str, bool]:
    """Who the viewer is, for the header's rules; computed once per request."""
    viewer = g.get("viewer")
    if viewer is None:
        return {}
    if "_nav_allowed" not in g:
        # One read of the grants for every rule below (the same rules as roles.is_support_staff / is_admin /
        # is_case_manager, which would read them three times), together with the unread count.
        facts = _header_facts()
        if facts is None:
            return {}
        grants = facts[0]
        support = bool(grants & roles.SUPPORT_GRANTS)
        admin = viewer.has_role(LaunchRole.ADMIN.value) or bool(grants & roles.ADMIN_GRANTS)
        manager = GrantRole.CASE_MANAGER.value in grants
        teaching = viewer.course_id is not None and viewer.has_role(LaunchRole.TEACHER.value, LaunchRole.TA.value)
        g._nav_allowed = {"course": teaching, "support": support, "admin": admin, "lms_report": manager or admin}
    return dict(g._nav_allowed)


def may_use(endpoint: str) -> bool:
    """Whether a link to one of the header's pages may be shown to the viewer (pages' own "← My caseload" links ask
    this, so an administrator reading a student's record is not offered a caseload that answers 403)."""
    who = next((w for e, _, w in ENTRIES if e == endpoint), None)
    if who is None:
        return True
    return _allowed().get(who, False)


def viewer_is_admin() -> bool:
    """``roles.is_admin`` for the request's viewer, from the header's one read of the grants (the admin blueprint's
    "Administration" entry asks this, so the header costs one query, not two)."""
    return _allowed().get("admin", False)


def header_links() -> list[HeaderLink]:
    allowed = _allowed()
    links = [HeaderLink(endpoint, label, app_url(endpoint), request.endpoint == endpoint)
             for endpoint, label, who in ENTRIES if allowed.get(who)]
    # One entry alone (a teacher's panel) is where they already are: no bar.
    return links if len(links) > 1 else []


ACTION_LABELS = {
    "view": "viewed the record", "view_notes": "read notes", "view_restricted": "read restricted notes",
    "create": "added a note", "acknowledge": "acknowledged the plan", "ask_question": "asked the case manager",
    "update": "changed the plan", "export": "exported the record", "create_plan": "started a plan",
    "assign_case_manager": "assigned the case manager", "view_casework": "viewed casework",
    "update_casework": "changed casework", "log_service": "logged a service session",
    # the administrators' change log (AdminAction)
    "grant.add": "role granted", "grant.change": "role grant changed", "grant.revoke": "role grant revoked",
    "import.apply": "import applied", "retention.purge": "records purged", "deployment.approve": "deployment approved",
    "deployment.disable": "deployment disabled", "plan.case_manager": "case manager assigned",
    "platform.registration_link": "registration link created", "platform.frame_origin.add": "LMS page origin allowed",
    "platform.frame_origin.remove": "LMS page origin removed",
}
"""What people read for a stored access-log or change-log action (issue #13: no raw codes such as ``view_notes`` or
``update_casework`` shown to people). Unknown codes fall back to words (underscores and dots to spaces)."""


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code.replace("_", " ").replace(".", " "))


def counted(n: int, one: str, many: str | None = None) -> str:
    """``3|counted("open question")`` -> "3 open questions", "1 open question" (issue #13: plurals right)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def init_app(app: Flask) -> None:
    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        g.pop("_nav_allowed", None)  # tests (and CLI) may keep one app context across requests
        g.pop("_header_facts", None)

    # Plan types as people read them ("Behavior", "Health"), wherever a template shows a stored plan type.
    app.jinja_env.filters["plan_type_label"] = lambda value: PLAN_TYPE_LABELS.get(value, value)
    app.jinja_env.filters["counted"] = counted
    app.jinja_env.filters["action_label"] = action_label

    @app.context_processor
    def _inject() -> dict[str, Any]:
        return {"header_links": header_links, "may_use": may_use}
