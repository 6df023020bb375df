"""The plans and accommodations editor on a real database: create, draft, edit, activate, history, refusals."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from lti_app import clock
from lti_app.models import (
    AccessEvent,
    Accommodation,
    Acknowledgement,
    AdminEvent,
    Plan,
    PlanVersion,
    RoleGrant,
    Student,
)
from tests.support import factories as f

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def school(db_session):
    """Ava (IEP v1 active, managed by Tamsin) is in Rowan's Algebra I, Period 1. Orla is another case manager;
    Idris a district administrator; Quill teaches a course Ava is not in."""
    s = db_session
    plat = f.platform(s)
    alg = f.course(s, plat, "Algebra I")
    art = f.course(s, plat, "Ceramics")
    p1 = f.section(s, alg, "101", "Period 1")
    teacher = f.person(s, plat, "Rowan Ellery", kind="staff")
    other_teacher = f.person(s, plat, "Quill Vantage", kind="staff")
    cm = f.person(s, plat, "Tamsin Larkspur", kind="staff")
    cm2 = f.person(s, plat, "Orla Fenwick", kind="staff")
    admin = f.person(s, plat, "Idris Calloway", kind="staff")
    s.add_all([RoleGrant(person_id=cm.id, role="case_manager"), RoleGrant(person_id=cm2.id, role="case_manager"),
               RoleGrant(person_id=admin.id, role="district_admin")])
    f.enroll(s, teacher, alg, "teacher", p1)
    f.enroll(s, other_teacher, art, "teacher")
    ava_person = f.person(s, plat, "Ava Quinlan", sis_id="S1")
    f.enroll(s, ava_person, alg, "student", p1)
    ava = Student(sis_id="S1", given_name="Ava", family_name="Quinlan")
    s.add(ava)
    s.flush()
    plan = Plan(student_id=ava.id, plan_type="IEP", status="active", case_manager_id=cm.id,
                effective_on=clock.today() - dt.timedelta(days=30), end_on=clock.today() + dt.timedelta(days=300))
    s.add(plan)
    s.flush()
    v1 = PlanVersion(plan_id=plan.id, version_no=1, status="active", summary="Initial plan",
                     activated_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    s.add(v1)
    s.flush()
    s.add_all([Accommodation(plan_version_id=v1.id, category="timing", text="Tests and quizzes: time and a half",
                             applies_to="tests", time_multiplier=Decimal("1.5"), catalogue_code="T-EXT-150",
                             position=0),
               Accommodation(plan_version_id=v1.id, category="setting", text="Seat near the front", position=1)])
    s.commit()
    return {"plat": plat, "alg": alg, "art": art, "p1": p1, "teacher": teacher, "other_teacher": other_teacher,
            "cm": cm, "cm2": cm2, "admin": admin, "ava": ava, "plan": plan, "v1": v1}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Browser:
    """A person using the plans pages: GET pages, POST forms with the token and CSRF of the last page."""

    def __init__(self, client, token: str, student_id: int) -> None:
        self.client, self.token, self.base = client, token, f"/casework/students/{student_id}/plans"
        self.csrf = ""

    def get(self, path: str = "", **params):
        resp = self.client.get(self.base + path, query_string={"t": self.token, **params})
        html = resp.get_data(as_text=True)
        if 'name="csrf_token"' in html:
            self.csrf = _csrf(html)
        return resp

    def post(self, path: str, csrf: bool = True, **data):
        if csrf and not self.csrf:
            from lti_app.auth import csrf_token, read_token

            with self.client.application.test_request_context():
                self.csrf = csrf_token(read_token(self.token))
        form = {"t": self.token, **({"csrf_token": self.csrf} if csrf else {}), **data}
        return self.client.post(self.base + path, data=form)


def _cm(client, token_for, school, who="cm"):
    return Browser(client, token_for(school[who], None, roles=("teacher",)), school["ava"].id)


def _versions(db_session, plan_id):
    db_session.expire_all()
    return {v.version_no: v for v in db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == plan_id))}


def _events(db_session, **where):
    db_session.expire_all()
    stmt = select(AccessEvent).order_by(AccessEvent.id)
    for k, v in where.items():
        stmt = stmt.where(getattr(AccessEvent, k) == v)
    return db_session.scalars(stmt).all()


# ------------------------------------------------------------------------------------------- create and edit
@BOTH
def test_case_manager_creates_a_plan_builds_the_draft_and_activates_it(client, token_for, school, db_session):
    b = _cm(client, token_for, school)
    home = b.get()
    assert home.status_code == 200 and "Tests and quizzes: time and a half" in home.get_data(as_text=True)
    assert b.get("/new").status_code == 200
    resp = b.post("/new", plan_type="504", effective_on="2026-09-01", end_on="2027-08-31")
    assert resp.status_code == 303
    plan = db_session.scalars(select(Plan).where(Plan.plan_type == "504")).one()
    assert plan.status == "draft" and plan.case_manager_id == school["cm"].id
    draft = _versions(db_session, plan.id)[1]
    assert draft.status == "draft"

    page = b.get(f"/{plan.id}/draft")
    assert page.status_code == 200 and "draft version 1" in page.get_data(as_text=True)
    vid = str(draft.id)
    assert b.post(f"/{plan.id}/draft/add", version_id=vid, source="catalogue", code="S-SEPARATE").status_code == 303
    assert b.post(f"/{plan.id}/draft/add", version_id=vid, source="catalogue", code="S-SEPARATE").status_code == 422
    assert b.post(f"/{plan.id}/draft/add", version_id=vid, source="free", category="response",
                  text="May type <b>answers</b> on a laptop", applies_to="all", subjects="English; History",
                  time_multiplier="", extra_attempts="").status_code == 303
    items = db_session.scalars(select(Accommodation).where(Accommodation.plan_version_id == draft.id)
                               .order_by(Accommodation.position)).all()
    assert [a.catalogue_code for a in items] == ["S-SEPARATE", None]
    assert items[1].subjects == ["English", "History"]
    # Reorder, then edit the catalogue entry's wording (its code stays its identity).
    assert b.post(f"/{plan.id}/draft/items/{items[1].id}/move", direction="up").status_code == 303
    assert b.post(f"/{plan.id}/draft/items/{items[0].id}", category="setting",
                  text="Tests in the library study room with a proctor", applies_to="tests", subjects="",
                  time_multiplier="", extra_attempts="").status_code == 303
    db_session.expire_all()
    items = db_session.scalars(select(Accommodation).where(Accommodation.plan_version_id == draft.id)
                               .order_by(Accommodation.position)).all()
    assert [a.catalogue_code for a in items] == [None, "S-SEPARATE"]
    assert items[1].text == "Tests in the library study room with a proctor"
    html = b.get(f"/{plan.id}/draft").get_data(as_text=True)
    assert "May type &lt;b&gt;answers&lt;/b&gt; on a laptop" in html and "<b>answers</b>" not in html

    confirm = b.get(f"/{plan.id}/activate")
    assert confirm.status_code == 200 and "First version" in confirm.get_data(as_text=True)
    assert b.post(f"/{plan.id}/activate", version_id=vid, summary="").status_code == 422  # summary required
    resp = b.post(f"/{plan.id}/activate", version_id=vid, summary="Initial 504 plan after the team meeting")
    assert resp.status_code == 303 and "done=activated" in resp.headers["Location"]
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    v = _versions(db_session, plan.id)[1]
    assert plan.status == "active" and v.status == "active"
    assert v.activated_by_id == school["cm"].id and v.activated_at is not None
    assert v.summary == "Initial 504 plan after the team meeting"
    # Every change was logged with its basis.
    changes = _events(db_session, action="update", allowed=True)
    assert len(changes) >= 5 and {e.basis for e in changes} == {"caseload (case manager)"}
    assert _events(db_session, action="create_plan")[0].basis == "caseload (case manager)"


def test_plan_page_read_is_logged_with_its_basis(client, token_for, school, db_session):
    _cm(client, token_for, school).get()
    events = _events(db_session, action="view", context="plans page")
    assert [(e.student_id, e.allowed, e.basis) for e in events] == [(school["ava"].id, True, "caseload (case manager)")]


# -------------------------------------------------------------------------------- activation and teachers
@BOTH
def test_activating_a_new_version_supersedes_and_reopens_teacher_acknowledgements(client, token_for, school,
                                                                                   db_session):
    ava, plan, v1 = school["ava"], school["plan"], school["v1"]
    # The teacher acknowledged version 1.
    t_token = token_for(school["teacher"], school["alg"])
    panel = client.get("/panels/course", query_string={"t": t_token}).get_data(as_text=True)
    resp = client.post("/panels/ack", data={"t": t_token, "csrf_token": _csrf(panel),
                                            "item": f"{ava.id}:{v1.id}:{school['p1'].id}"})
    assert resp.status_code == 303
    assert "needs your acknowledgement" not in client.get("/panels/course", query_string={"t": t_token}).get_data(
        as_text=True)

    b = _cm(client, token_for, school)
    b.get()
    assert b.post(f"/{plan.id}/draft").status_code == 303
    draft = _versions(db_session, plan.id)[2]
    assert draft.status == "draft" and len(draft.accommodations) == 2  # copied from version 1
    ext, seat = sorted(draft.accommodations, key=lambda a: a.position)
    b.get(f"/{plan.id}/draft")
    assert b.post(f"/{plan.id}/draft/items/{ext.id}", category="timing", text="Tests and quizzes: double time",
                  applies_to="tests", subjects="", time_multiplier="2", extra_attempts="").status_code == 303
    assert b.post(f"/{plan.id}/draft/items/{seat.id}/remove").status_code == 303
    assert b.post(f"/{plan.id}/draft/add", version_id=str(draft.id), source="catalogue",
                  code="S-HEADPHONES").status_code == 303
    # Teachers still see version 1 while the draft is open.
    assert "double time" not in client.get("/panels/course", query_string={"t": t_token}).get_data(as_text=True)

    confirm = b.get(f"/{plan.id}/activate").get_data(as_text=True)
    assert "Removed" in confirm and "Seat near the front" in confirm and "time multiplier: 1.5x → 2x" in confirm
    assert b.post(f"/{plan.id}/activate", version_id=str(draft.id),
                  summary="More time after the review meeting").status_code == 303
    versions = _versions(db_session, plan.id)
    assert versions[1].status == "superseded" and versions[2].status == "active"
    assert db_session.scalar(select(func.count()).select_from(Acknowledgement)) == 1  # history kept

    html = " ".join(client.get("/panels/course", query_string={"t": t_token}).get_data(as_text=True).split())
    assert "1 needs your acknowledgement" in html and "needs your acknowledgement" in html
    assert "What changed:</strong> version 2 replaces version 1" in html
    assert "More time after the review meeting" in html
    assert "Changed: Tests and quizzes: double time (time multiplier: 1.5x → 2x)" in html
    assert "Removed: Seat near the front" in html
    assert "Added: May wear noise-reducing headphones" in html


def test_history_and_version_diff(client, token_for, school, db_session):
    plan = school["plan"]
    b = _cm(client, token_for, school)
    b.get()
    b.post(f"/{plan.id}/draft")
    draft = _versions(db_session, plan.id)[2]
    b.post(f"/{plan.id}/draft/add", version_id=str(draft.id), source="catalogue", code="R-CALC")
    b.post(f"/{plan.id}/activate", version_id=str(draft.id), summary="Calculator added")
    history = b.get(f"/{plan.id}/history").get_data(as_text=True)
    assert "Version 2" in history and "Version 1" in history and "superseded" in history
    assert "Calculator added" in history and "First version" in history
    v2 = b.get(f"/{plan.id}/versions/{draft.id}").get_data(as_text=True)
    assert "Changes from version 1" in v2 and "Added" in v2 and "basic calculator" in v2
    assert "cannot be changed" in v2


def test_discarding_a_draft_keeps_the_version_in_force(client, token_for, school, db_session):
    plan = school["plan"]
    b = _cm(client, token_for, school)
    b.get()
    b.post(f"/{plan.id}/draft")
    draft = _versions(db_session, plan.id)[2]
    assert b.post(f"/{plan.id}/draft/discard", version_id=str(draft.id)).status_code == 303
    versions = _versions(db_session, plan.id)
    # Kept (nothing is hard-deleted) but outside the numbering: a discarded draft does not consume a version number.
    assert versions[1].status == "active" and versions[-draft.id].status == "discarded" and 2 not in versions
    # The next draft is a new version with the number the discarded one gave back; the discarded one is never edited
    # again.
    b.post(f"/{plan.id}/draft")
    again = _versions(db_session, plan.id)[2]
    assert again.status == "draft" and again.id != draft.id and 3 not in _versions(db_session, plan.id)
    assert ">Draft</a>" in b.get(f"/{plan.id}/history").get_data(as_text=True)
    resp = b.post(f"/{plan.id}/draft/summary", version_id=str(draft.id), summary="late edit")
    assert resp.status_code == 409
    # The stale tab (issue #13): what was typed is kept on the page, where the plan stands now is said, and the way
    # back leads to the draft that is open now.
    page = resp.get_data(as_text=True)
    assert ">late edit</textarea>" in page and "Version 1 is in force" in page
    assert "Draft version 2 is open" in page and f"/plans/{plan.id}/draft?t=" in page


# ------------------------------------------------------------------------------------------- immutability
def test_active_version_is_immutable(client, token_for, school, db_session):
    plan, v1 = school["plan"], school["v1"]
    item = v1.accommodations[0]
    b = _cm(client, token_for, school)
    b.get()
    resp = b.post(f"/{plan.id}/draft/summary", version_id=str(v1.id), summary="rewrite history")
    assert resp.status_code == 409 and "cannot be changed" in resp.get_data(as_text=True)
    b.post(f"/{plan.id}/draft")  # a draft exists, but version 1's rows are still not editable through it
    for path, data in [(f"/{plan.id}/draft/items/{item.id}", {"category": "timing", "text": "changed",
                                                             "applies_to": "all"}),
                       (f"/{plan.id}/draft/items/{item.id}/remove", {}),
                       (f"/{plan.id}/activate", {"version_id": str(v1.id), "summary": "again"})]:
        resp = b.post(path, **data)
        assert resp.status_code == 409, path
    db_session.expire_all()
    v1 = db_session.get(PlanVersion, v1.id)
    assert v1.status == "active" and v1.summary == "Initial plan"
    assert [a.text for a in v1.accommodations] == ["Tests and quizzes: time and a half", "Seat near the front"]


# ----------------------------------------------------------------------------------------------- refusals
def test_case_manager_outside_the_caseload_gets_a_403_with_the_reason_and_it_is_logged(client, token_for, school,
                                                                                       db_session):
    plan = school["plan"]
    b = _cm(client, token_for, school, "cm2")
    home = b.get()
    assert home.status_code == 200  # the support team may read the plan
    assert "Start a new version" not in home.get_data(as_text=True)
    resp = b.post(f"/{plan.id}/draft")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "not on your caseload" in body and "case manager grant" in body
    refused = _events(db_session, allowed=False)
    assert [(e.actor_id, e.student_id, e.action) for e in refused] == [(school["cm2"].id, school["ava"].id, "update")]
    assert "case manager grant" in refused[0].basis
    assert len(_versions(db_session, plan.id)) == 1
    assert b.post("/new", plan_type="504", effective_on="2026-09-01").status_code == 403
    assert db_session.scalar(select(func.count()).select_from(Plan)) == 1


def test_teachers_and_strangers_are_refused(client, token_for, school, db_session):
    ava = school["ava"]
    teacher = Browser(client, token_for(school["teacher"], school["alg"]), ava.id)
    resp = teacher.get()
    assert resp.status_code == 403 and "course panel" in resp.get_data(as_text=True)
    stranger = Browser(client, token_for(school["other_teacher"], school["art"]), ava.id)
    resp = stranger.get()
    assert resp.status_code == 404 and "no student record here that you may see" in resp.get_data(as_text=True)
    assert Browser(client, token_for(school["cm"], None), 999999).get().status_code == 404
    refused = _events(db_session, allowed=False)
    assert len(refused) == 3 and refused[2].student_id is None


def test_post_without_csrf_is_refused_and_writes_nothing(client, token_for, school, db_session):
    b = _cm(client, token_for, school)
    resp = b.post(f"/{school['plan'].id}/draft", csrf=False)
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    resp = b.post("/new", csrf=False, plan_type="504", effective_on="2026-09-01")
    assert resp.status_code == 400
    assert len(_versions(db_session, school["plan"].id)) == 1
    assert db_session.scalar(select(func.count()).select_from(Plan)) == 1


@BOTH
def test_date_errors_are_explained_and_nothing_is_written(client, token_for, school, db_session):
    b = _cm(client, token_for, school)
    before = db_session.scalar(select(func.count()).select_from(AccessEvent))
    resp = b.post("/new", plan_type="504", effective_on="2026-09-01", end_on="2026-08-01")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "The end date 2026-08-01 is before the effective date 2026-09-01" in html
    assert 'value="2026-09-01"' in html  # what was entered is kept
    resp = b.post("/new", plan_type="IEP", effective_on="2026-09-01")
    assert resp.status_code == 422 and "already has a current IEP" in resp.get_data(as_text=True)
    resp = b.post("/new", plan_type="504", effective_on="next week")
    assert resp.status_code == 422 and "YYYY-MM-DD" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Plan)) == 1
    assert db_session.scalar(select(func.count()).select_from(PlanVersion)) == 1
    assert not _events(db_session, action="create_plan")  # only the re-rendered form's views were logged
    assert db_session.scalar(select(func.count()).select_from(AccessEvent)) > before
    # Changing dates of an existing plan follows the same rules.
    plan = school["plan"]
    resp = b.post(f"/{plan.id}/dates", effective_on="2026-09-01", end_on="2026-01-01", annual_review_due="",
                  reevaluation_due="")
    assert resp.status_code == 422
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).end_on == school["plan"].end_on


def test_admin_assigns_the_case_manager_and_case_managers_cannot(client, token_for, school, db_session):
    plan = school["plan"]
    cm = _cm(client, token_for, school)
    cm.get()
    assert cm.post(f"/{plan.id}/case-manager", case_manager_id=str(school["cm2"].id)).status_code == 403
    admin = Browser(client, token_for(school["admin"], None, roles=("admin",)), school["ava"].id)
    home = admin.get().get_data(as_text=True)
    assert "Assign the case manager" in home and "Start a new version" not in home
    assert admin.post(f"/{plan.id}/case-manager", case_manager_id=str(school["teacher"].id)).status_code == 422
    assert admin.post(f"/{plan.id}/case-manager", case_manager_id=str(school["cm2"].id)).status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).case_manager_id == school["cm2"].id
    event = db_session.scalars(select(AdminEvent)).one()
    assert event.action == "plan.case_manager" and event.target_id == plan.id
    # Now the new case manager edits and the old one is refused.
    assert _cm(client, token_for, school, "cm2").post(f"/{plan.id}/draft").status_code == 303
    assert cm.post(f"/{plan.id}/draft").status_code == 403
    # An administrator can start a plan naming its case manager; that case manager then writes it.
    resp = admin.post("/new", plan_type="health", effective_on="2026-09-01", case_manager_id=str(school["cm"].id))
    assert resp.status_code == 303
    health = db_session.scalars(select(Plan).where(Plan.plan_type == "health")).one()
    assert health.case_manager_id == school["cm"].id and health.status == "draft"
    assert cm.get(f"/{health.id}/draft").status_code == 200


def test_activation_refuses_an_empty_or_unchanged_draft(client, token_for, school, db_session):
    plan = school["plan"]
    b = _cm(client, token_for, school)
    b.get()
    b.post(f"/{plan.id}/draft")
    draft = _versions(db_session, plan.id)[2]
    resp = b.post(f"/{plan.id}/activate", version_id=str(draft.id), summary="No change")
    assert resp.status_code == 422 and "nothing to activate" in resp.get_data(as_text=True)
    assert _versions(db_session, plan.id)[1].status == "active"
