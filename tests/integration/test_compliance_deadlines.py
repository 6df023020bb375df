"""Issue #11 deadlines over HTTP, on PostgreSQL and SQLite: the waiver that covers one reevaluation, the initial IEP
meeting after eligibility, the transition plan, the 504 reevaluation, "no later than one year" in the plan editor,
timeliness kept with its reason (never overwritten), a meeting marked held updating the plan (one entry, not two),
accommodations that contradict, and "N of M teachers" counting only the student's own teachers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app import clock
from lti_app.domain.deadlines import add_years
from lti_app.models import Acknowledgement, DeadlineCompletion, Enrollment, Meeting, Plan, PlanVersion
from tests.support import casework_world
from tests.support import factories as f
from tests.support.casework_world import Client, text_of

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)

TODAY = clock.today()


def ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    return casework_world.build(db_session)


@pytest.fixture
def as_(client: Any, token_for: Any, world: dict[str, Any]) -> Any:
    def make(key: str, roles: tuple[str, ...] = ("teacher",)) -> Client:
        return Client(client, token_for(world[key], None, roles=roles))

    return make


def inputs_url(world: dict[str, Any]) -> str:
    return f"/casework/students/{world['ava'].id}/plans/{world['plan_ava'].id}/deadlines"


def page_of(cm: Client, world: dict[str, Any]) -> str:
    return text_of(cm.get(f"/casework/students/{world['ava'].id}/deadlines"))


def completions(db_session: Any) -> list[tuple[str, dt.date, dt.date, int, str | None]]:
    db_session.expire_all()
    return [(c.kind, c.due_on, c.completed_on, c.days_late, c.late_reason) for c in db_session.scalars(
        select(DeadlineCompletion).order_by(DeadlineCompletion.id))]


def test_300_303_b_2_waiver_covers_one_reevaluation_and_the_next_is_due_three_years_later(as_, world, db_session):
    cm = as_("cm")
    evaluated = add_years(ago(20), -3)             # the reevaluation was due 20 days ago
    resp = cm.post(inputs_url(world), {"last_evaluation_on": evaluated.isoformat(), "reevaluation_waived": "1",
                                       "reevaluation_waived_on": ago(30).isoformat()})
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, world["plan_ava"].id)
    assert plan.reevaluation_waiver_covers == ago(20)
    assert plan.reevaluation_due == add_years(ago(20), 3)
    body = page_of(cm, world)
    assert "reevaluation waived by agreement on" in body and "reevaluation (next after the waived one)" in body
    assert "0 overdue" in text_of(cm.get("/casework/deadlines"))


def test_300_323_c_1_initial_iep_meeting_late_needs_a_reason_and_is_kept_late(as_, world, db_session):
    world["plan_ava"].status = "draft"
    db_session.commit()
    cm = as_("cm")
    assert cm.post(inputs_url(world), {"eligibility_determined_on": ago(40).isoformat()}).status_code == 303
    assert "initial IEP meeting (30 days from eligibility)" in text_of(cm.get("/casework/deadlines"))
    late = {"eligibility_determined_on": ago(40).isoformat(), "last_meeting_on": ago(2).isoformat()}
    resp = cm.post(inputs_url(world), late)
    assert resp.status_code == 422 and "8 days after it was due" in text_of(resp)
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on is None and completions(db_session) == []
    resp = cm.post(inputs_url(world), {**late, "late_reason": "enrolled_elsewhere"})
    assert resp.status_code == 422 and "excuses only the initial-evaluation timeline" in text_of(resp)
    assert cm.post(inputs_url(world), {**late, "late_reason": "parent_requested_delay"}).status_code == 303
    assert completions(db_session) == [("initial_iep_meeting", ago(10), ago(2), 8, "parent_requested_delay")]
    body = page_of(cm, world)
    assert "Deadlines met" in body and "8 days late Parent asked to reschedule" in body


def test_300_301_d_timeliness_is_kept_not_overwritten_by_the_next_deadline(as_, world, db_session):
    cm = as_("cm")
    consent = ago(75)                                # due 15 days ago
    resp = cm.post(inputs_url(world), {"evaluation_consent_on": consent.isoformat(),
                                       "last_evaluation_on": ago(5).isoformat(),
                                       "late_reason": "parent_did_not_produce_child"})
    assert resp.status_code == 303
    assert "an exception under 34 CFR 300.301(d)" in page_of(cm, world)
    resp = cm.post(inputs_url(world), {"evaluation_consent_on": consent.isoformat(),
                                       "last_evaluation_on": ago(5).isoformat(), "last_meeting_on": ago(3).isoformat()})
    assert resp.status_code == 303
    kept = completions(db_session)
    assert kept[0] == ("initial_evaluation", ago(15), ago(5), 10, "parent_did_not_produce_child")
    assert len(kept) == 1   # the first IEP meeting set no annual-review deadline to meet: nothing else recorded


def test_300_320_b_transition_plan_deadline_from_the_date_of_birth(as_, world, db_session):
    world["ava"].date_of_birth = add_years(TODAY + dt.timedelta(days=20), -16)   # turns 16 in 20 days
    db_session.commit()
    cm = as_("cm")
    listing = text_of(cm.get("/casework/deadlines"))
    assert "transition plan (IEP in effect at age 16)" in listing and "1 due within 30 days" in listing
    resp = cm.post(inputs_url(world), {"transition_plan_on": ago(1).isoformat()})
    assert resp.status_code == 303
    listing = text_of(cm.get("/casework/deadlines"))
    assert "transition plan" not in listing and "0 due within 30 days" in listing
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).transition_plan_on == ago(1)


def test_104_35_d_504_plan_shows_its_reevaluation(as_, world, db_session):
    plan = world["plan_ava"]
    plan.plan_type, plan.effective_on = "504", add_years(ago(5), -3)
    db_session.commit()
    body = text_of(as_("cm").get("/casework/deadlines"))
    assert "504 reevaluation (every 36 months)" in body and "2 overdue" in body   # and the 504 review


def test_300_324_b_1_i_plan_editor_refuses_an_annual_review_366_days_after_the_start(as_, world, db_session):
    plan = world["plan_ava"]
    url = f"/casework/students/{world['ava'].id}/plans/{plan.id}/dates"
    cm = as_("cm")
    cm.get(f"/casework/students/{world['ava'].id}/plans")
    resp = cm.post(url, {"effective_on": "2026-03-01", "annual_review_due": "2027-03-02"})
    assert resp.status_code == 422 and "must be on or before 2027-03-01" in text_of(resp)
    assert cm.post(url, {"effective_on": "2026-03-01", "annual_review_due": "2027-03-01"}).status_code == 303


# --- one entry, not two: a meeting marked held ------------------------------------------------------------------

def meeting(**kw: str) -> dict[str, str]:
    return {"meeting_type": "iep_annual", "meets_on": ago(1).isoformat(), "participants": "case manager, parent",
            "status": "held", "outcome": "IEP reviewed", **kw}


def test_held_annual_review_updates_the_plan_and_stops_the_overdue_at_once(as_, world, db_session):
    world["plan_ava"].last_meeting_on = ago(370)        # annual review 5 days overdue
    db_session.commit()
    cm = as_("cm")
    assert "1 overdue" in text_of(cm.get("/casework/deadlines"))
    url = f"/casework/students/{world['ava'].id}/meetings"
    cm.get(f"/casework/students/{world['ava'].id}/contacts")
    resp = cm.post(url, meeting())
    assert resp.status_code == 422 and "4 days after it was due" in text_of(resp)
    assert db_session.scalar(select(func.count()).select_from(Meeting)) == 0       # nothing half-written
    resp = cm.post(url, meeting(late_reason="staff_unavailable"))
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, world["plan_ava"].id)
    assert plan.last_meeting_on == ago(1) and plan.annual_review_due == add_years(ago(1), 1)
    assert "0 overdue" in text_of(cm.get("/casework/deadlines"))
    row = db_session.scalars(select(DeadlineCompletion)).one()
    assert (row.kind, row.days_late, row.late_reason) == ("annual_review", 4, "staff_unavailable")
    assert row.meeting_id == db_session.scalars(select(Meeting.id)).one()


def test_held_eligibility_meeting_completes_the_initial_evaluation_and_starts_the_30_days(as_, world, db_session):
    # The plan is active here: the contacts & meetings tab opens to the case managers of active plans (the casework
    # access rule); the deadlines page also lets a draft plan's case manager record the same dates.
    plan = world["plan_ava"]
    plan.evaluation_consent_on = ago(50)
    db_session.commit()
    cm = as_("cm")
    cm.get(f"/casework/students/{world['ava'].id}/contacts")
    resp = cm.post(f"/casework/students/{world['ava'].id}/meetings",
                   meeting(meeting_type="eligibility", meets_on=ago(3).isoformat()))
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert (plan.eligibility_determined_on, plan.last_evaluation_on) == (ago(3), ago(3))
    assert completions(db_session) == [("initial_evaluation", ago(50) + dt.timedelta(days=60), ago(3), 0, None)]
    assert "initial IEP meeting (30 days from eligibility)" in text_of(cm.get("/casework/deadlines"))


def test_a_held_meeting_recorded_by_another_plans_case_manager_leaves_the_iep_dates(as_, world, db_session):
    # Ava also has a 504 plan managed by Perrin Galloway: he may record her meetings, but the IEP's dates are
    # recorded by the IEP's own case manager.
    world["plan_ava"].last_meeting_on = ago(100)
    other = Plan(student_id=world["ava"].id, plan_type="504", status="active", case_manager_id=world["other_cm"].id)
    db_session.add(other)
    db_session.flush()
    db_session.add(PlanVersion(plan_id=other.id, version_no=1, status="active"))
    db_session.commit()
    perrin = as_("other_cm")
    perrin.get(f"/casework/students/{world['ava'].id}/contacts")
    resp = perrin.post(f"/casework/students/{world['ava'].id}/meetings", meeting())
    assert resp.status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(100)
    assert completions(db_session) == []
    resp = perrin.post(f"/casework/students/{world['ava'].id}/meetings", meeting(meeting_type="504_review"))
    assert resp.status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, other.id).last_504_review_on == ago(1)


def test_an_amendment_meeting_does_not_move_the_annual_review(as_, world, db_session):
    world["plan_ava"].last_meeting_on = ago(100)
    db_session.commit()
    cm = as_("cm")
    cm.get(f"/casework/students/{world['ava'].id}/contacts")
    assert cm.post(f"/casework/students/{world['ava'].id}/meetings",
                   meeting(meeting_type="iep_amendment")).status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(100)


# --- accommodations that contradict ------------------------------------------------------------------------------

def test_editor_refuses_two_time_multipliers_for_the_same_tests_and_names_both(as_, world, db_session):
    plan = world["plan_ava"]
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}/plans/{plan.id}"
    cm.get(f"/casework/students/{world['ava'].id}/plans")
    assert cm.post(f"{base}/draft", {}).status_code == 303
    draft = db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == plan.id,
                                                         PlanVersion.status == "draft")).one()
    item = {"version_id": str(draft.id), "category": "timing", "applies_to": "tests", "subjects": ""}
    assert cm.post(f"{base}/draft/add", {**item, "text": "Tests: 1.5x time", "time_multiplier": "1.5"}
                   ).status_code == 303
    resp = cm.post(f"{base}/draft/add", {**item, "text": "Tests: double time", "time_multiplier": "2"})
    body = text_of(resp)
    assert resp.status_code == 422 and "“Tests: 1.5x time” (time multiplier 1.5x)" in body
    assert "“Tests: double time” (time multiplier 2x)" in body
    assert cm.post(f"{base}/draft/add", {**item, "applies_to": "classroom", "text": "Classwork: double time",
                                         "time_multiplier": "2"}).status_code == 303
    db_session.expire_all()
    assert len(db_session.get(PlanVersion, draft.id).accommodations) == 2


def test_import_names_the_two_lines_that_contradict(db_session, world):
    from lti_app.services.casework.importer import COLUMN_NAMES, parse

    header = ",".join(COLUMN_NAMES)

    def line(text: str, mult: str) -> str:
        values = {"student_sis_id": "S-9", "given_name": "Jules", "family_name": "Marchetti", "plan_type": "IEP",
                  "effective_on": "2026-09-01", "accommodation_category": "timing", "accommodation_text": text,
                  "applies_to": "tests", "time_multiplier": mult}
        return ",".join(values.get(n, "") for n in COLUMN_NAMES)

    parsed = parse(f"{header}\n{line('Tests: 1.5x', '1.5')}\n{line('Tests: 2x', '2')}\n".encode(), TODAY)
    (issue,) = parsed.errors
    assert (issue.line, issue.column) == (3, "time_multiplier") and "contradicts line 2" in issue.message


# --- N of M teachers acknowledged ---------------------------------------------------------------------------------

def test_teacher_count_is_the_students_own_teachers_not_the_whole_course(as_, world, db_session):
    plat, course = world["platform"], f.course(db_session, world["platform"], "Biology")
    period1, period2 = f.section(db_session, course, "bio-1", "Period 1"), f.section(db_session, course, "bio-2",
                                                                                    "Period 2")
    mine, other = f.person(db_session, plat, "Sable Fenwick", kind="staff"), f.person(db_session, plat,
                                                                                     "Idris Holt", kind="staff")
    f.enroll(db_session, world["ava_person"], course, "student", period1)
    f.enroll(db_session, mine, course, "teacher", period1)
    f.enroll(db_session, other, course, "teacher", period2)          # teaches Biology, not Ava
    version = db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == world["plan_ava"].id)).one()
    db_session.add_all([
        Acknowledgement(staff_person_id=mine.id, student_id=world["ava"].id, plan_version_id=version.id,
                        section_id=period1.id),
        Acknowledgement(staff_person_id=other.id, student_id=world["ava"].id, plan_version_id=version.id,
                        section_id=period2.id)])
    db_session.commit()
    body = text_of(as_("cm").get("/casework/"))
    # Rowan Ellery (Algebra I, course-wide) and Sable Fenwick (Ava's Biology period): 2 teachers, 1 acknowledged.
    assert "1 of 2 teachers" in body
    # An acknowledgement made before the teacher's enrollment began is re-opened (as on the teacher's panel).
    enrollment = db_session.scalars(select(Enrollment).where(Enrollment.person_id == mine.id)).one()
    enrollment.created_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    db_session.commit()
    assert "0 of 2 teachers" in text_of(as_("cm").get("/casework/"))


def test_300_303_b_2_a_waiver_recorded_before_the_upgrade_keeps_covering_the_same_reevaluation(as_, world,
                                                                                                db_session):
    plan = world["plan_ava"]
    plan.reevaluation_due, plan.reevaluation_waived_on = ago(10), ago(40)    # waived; no evaluation date known
    db_session.commit()
    cm = as_("cm")
    form = {"reevaluation_waived": "1", "reevaluation_waived_on": ago(40).isoformat()}
    for _ in range(2):   # saving twice must not move the next reevaluation again
        assert cm.post(inputs_url(world), form).status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert (plan.reevaluation_waiver_covers, plan.reevaluation_due) == (ago(10), add_years(ago(10), 3))


# --- a held meeting withdrawn: removed, its date corrected, or no longer held ------------------------------------

def _meeting_id(db_session: Any) -> int:
    db_session.expire_all()
    return db_session.scalars(select(Meeting.id).order_by(Meeting.id.desc())).first()


def test_300_324_b_1_i_removing_a_held_annual_review_rolls_the_plan_back_and_it_is_overdue_again(as_, world,
                                                                                                 db_session):
    world["plan_ava"].last_meeting_on = ago(370)        # annual review 5 days overdue
    db_session.commit()
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}"
    cm.get(f"{base}/contacts")
    assert cm.post(f"{base}/meetings", meeting(late_reason="staff_unavailable")).status_code == 303
    assert "0 overdue" in text_of(cm.get("/casework/deadlines"))
    mid = _meeting_id(db_session)
    refused = cm.post(f"{base}/meetings/{mid}/remove", {"reason": "recorded for the wrong student"})  # no confirm
    assert refused.status_code == 422
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(1)       # nothing half-done
    resp = cm.post(f"{base}/meetings/{mid}/remove", {"reason": "recorded for the wrong student", "confirm": "on"})
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, world["plan_ava"].id)
    assert plan.last_meeting_on == ago(370) and plan.annual_review_due == add_years(ago(370), 1)
    assert "1 overdue" in text_of(cm.get("/casework/deadlines"))
    row = db_session.scalars(select(DeadlineCompletion)).one()          # kept, withdrawn
    assert row.withdrawn_at is not None and row.meeting_id == mid
    page = page_of(cm, world)
    assert "withdrawn" in page and "overdue" in page
    assert db_session.get(Meeting, mid).deleted_at is not None           # the meeting is kept in the history too


def test_300_303_correcting_a_held_reevaluation_date_recomputes_the_plan(as_, world, db_session):
    plan = world["plan_ava"]
    plan.last_evaluation_on = ago(1000)
    db_session.commit()
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}"
    cm.get(f"{base}/contacts")
    assert cm.post(f"{base}/meetings", meeting(meeting_type="reevaluation", meets_on=ago(5).isoformat())
                   ).status_code == 303
    mid = _meeting_id(db_session)
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).last_evaluation_on == ago(5)
    # The meeting was on an earlier day: corrected, the plan follows (before, an earlier date changed nothing).
    resp = cm.post(f"{base}/meetings/{mid}/edit", meeting(meeting_type="reevaluation", meets_on=ago(9).isoformat(),
                                                          reason="the date was typed wrong"))
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert plan.last_evaluation_on == ago(9) and plan.reevaluation_due == add_years(ago(9), 3)
    kept = [(c.completed_on, c.withdrawn_at is not None) for c in db_session.scalars(
        select(DeadlineCompletion).where(DeadlineCompletion.kind == "reevaluation").order_by(DeadlineCompletion.id))]
    assert kept == [(ago(5), True), (ago(9), False)]
    # Marked cancelled after all: the date goes back to the evaluation before it.
    resp = cm.post(f"{base}/meetings/{mid}/edit", meeting(meeting_type="reevaluation", meets_on=ago(9).isoformat(),
                                                          status="cancelled", reason="it did not take place"))
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert plan.last_evaluation_on == ago(1000) and plan.reevaluation_due == add_years(ago(1000), 3)


def test_300_324_b_1_i_removing_an_earlier_meeting_keeps_the_later_one_and_removing_both_goes_back(as_, world,
                                                                                                   db_session):
    world["plan_ava"].last_meeting_on = ago(300)
    db_session.commit()
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}"
    cm.get(f"{base}/contacts")
    assert cm.post(f"{base}/meetings", meeting(meets_on=ago(20).isoformat())).status_code == 303
    first = _meeting_id(db_session)
    assert cm.post(f"{base}/meetings", meeting(meets_on=ago(2).isoformat())).status_code == 303
    second = _meeting_id(db_session)
    removal = {"reason": "entered twice", "confirm": "on"}
    assert cm.post(f"{base}/meetings/{first}/remove", removal).status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(2)
    assert cm.post(f"{base}/meetings/{second}/remove", removal).status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(300)


def test_300_324_b_1_i_a_date_typed_on_the_deadlines_page_since_is_not_undone(as_, world, db_session):
    world["plan_ava"].last_meeting_on = ago(300)
    db_session.commit()
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}"
    cm.get(f"{base}/contacts")
    assert cm.post(f"{base}/meetings", meeting(meets_on=ago(20).isoformat())).status_code == 303
    mid = _meeting_id(db_session)
    cm.get(f"{base}/deadlines")
    assert cm.post(inputs_url(world), {"last_meeting_on": ago(4).isoformat()}).status_code == 303
    assert cm.post(f"{base}/meetings/{mid}/remove", {"reason": "wrong student", "confirm": "on"}).status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on == ago(4)


# --- eligibility for a draft IEP through a meeting ----------------------------------------------------------------

def _draft_only(world: dict[str, Any], db_session: Any) -> Plan:
    plan = world["plan_ava"]
    plan.status = "draft"
    db_session.execute(PlanVersion.__table__.update().where(PlanVersion.plan_id == plan.id).values(status="draft"))
    plan.evaluation_consent_on = ago(45)
    db_session.commit()
    return plan


def test_300_323_c_1_eligibility_meeting_for_a_draft_iep_starts_the_30_day_clock(as_, world, db_session):
    plan = _draft_only(world, db_session)
    cm = as_("cm")
    base = f"/casework/students/{world['ava'].id}"
    assert cm.get(f"{base}/contacts").status_code == 200          # casework opens to the draft's case manager
    resp = cm.post(f"{base}/meetings", meeting(meeting_type="eligibility", meets_on=ago(3).isoformat()))
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert (plan.status, plan.eligibility_determined_on, plan.last_evaluation_on) == ("draft", ago(3), ago(3))
    page = page_of(cm, world)
    assert "initial IEP meeting (30 days from eligibility)" in page
    # The 300.306 determination removed (recorded by mistake): the 30-day clock has nothing to start from again.
    mid = _meeting_id(db_session)
    assert cm.post(f"{base}/meetings/{mid}/remove", {"reason": "not held yet", "confirm": "on"}).status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, plan.id)
    assert (plan.eligibility_determined_on, plan.last_evaluation_on) == (None, None)
    assert "initial IEP meeting (30 days from eligibility)" not in page_of(cm, world)


def test_300_306_draft_iep_casework_stays_closed_to_other_case_managers_and_logs_the_refusal(as_, world, db_session):
    _draft_only(world, db_session)
    perrin = as_("other_cm")
    resp = perrin.get(f"/casework/students/{world['ava'].id}/contacts")
    assert resp.status_code == 403
    from lti_app.models import AccessEvent

    db_session.expire_all()
    event = db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == world["other_cm"].id)
                               .order_by(AccessEvent.id.desc())).first()
    assert event is not None and not event.allowed and "not on your caseload" in event.basis
