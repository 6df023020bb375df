"""The teacher course panel, acknowledgements, notes and questions on a real database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from lti_app import clock
from lti_app.models import (
    AccessEvent,
    Accommodation,
    Acknowledgement,
    CaseNote,
    CaseNoteRevision,
    Plan,
    PlanVersion,
    Question,
    RoleGrant,
    Student,
)
from tests.support import factories as f


@pytest.fixture
def school(db_session):
    """Two courses; teacher A teaches Algebra P1, teacher B teaches Biology. Ava (IEP) is in Algebra P1,
    Ben (504) in Algebra P2, Cy (no plan) in Algebra P1, Dee (IEP) in Biology only."""
    s = db_session
    plat = f.platform(s)
    alg = f.course(s, plat, "Algebra I")
    bio = f.course(s, plat, "Biology")
    p1, p2 = f.section(s, alg, "101", "Period 1"), f.section(s, alg, "102", "Period 2")
    teacher_a = f.person(s, plat, "Rowan Ellery", kind="staff")
    teacher_b = f.person(s, plat, "Sable Whitlock", kind="staff")
    cm = f.person(s, plat, "Tamsin Larkspur", kind="staff")
    s.add(RoleGrant(person_id=cm.id, role="case_manager", can_see_restricted=True))
    f.enroll(s, teacher_a, alg, "teacher", p1)
    f.enroll(s, teacher_b, bio, "teacher")
    people = {}
    for name, course, sec, sis in [("Ava Quinlan", alg, p1, "S1"), ("Ben Ashgrove", alg, p2, "S2"),
                                   ("Cy Brindle", alg, p1, "S3"), ("Dee Dunmore", bio, None, "S4")]:
        person = f.person(s, plat, name, sis_id=sis)
        f.enroll(s, person, course, "student", sec)
        people[name.split()[0]] = person
    plans = {}
    for first, sis, ptype, accs in [("Ava", "S1", "IEP", [("timing", "Tests: 1.5x time"), ("setting", "Seat near the front")]),
                                    ("Ben", "S2", "504", [("presentation", "Copy of notes")]),
                                    ("Dee", "S4", "IEP", [("response", "Calculator allowed")])]:
        student = Student(sis_id=sis, given_name=first, family_name=people[first].family_name)
        s.add(student)
        s.flush()
        plan = Plan(student_id=student.id, plan_type=ptype, status="active", case_manager_id=cm.id)
        s.add(plan)
        s.flush()
        v = PlanVersion(plan_id=plan.id, version_no=1, status="active")
        s.add(v)
        s.flush()
        for i, (cat, txt) in enumerate(accs):
            s.add(Accommodation(plan_version_id=v.id, category=cat, text=txt, applies_to="all", position=i))
        plans[first] = (student, plan, v)
    s.commit()
    return {"plat": plat, "alg": alg, "bio": bio, "p1": p1, "a": teacher_a, "b": teacher_b, "cm": cm, "plans": plans,
            "people": people}


def _panel(client, token, **params):
    return client.get("/panels/course", query_string={"t": token, **params})


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_panel_shows_only_planned_students_in_my_sections(client, token_for, school, db_session):
    resp = _panel(client, token_for(school["a"], school["alg"]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Ava" in html and "Tests: 1.5x time" in html
    assert "Ben" not in html  # other section of the same course
    assert "Cy Brindle" not in html  # no plan
    assert "Dee" not in html  # another course
    assert "1 student in your sections has a support plan · 1 needs your acknowledgement" in " ".join(html.split())
    events = db_session.scalars(select(AccessEvent)).all()
    assert [(e.student_id, e.action, e.basis) for e in events] == [
        (school["plans"]["Ava"][0].id, "view", "teacher enrollment in Algebra I (Period 1)")]


def test_filters_and_search(client, token_for, school):
    token = token_for(school["a"], school["alg"])
    assert "Ava" in _panel(client, token, category="timing").get_data(as_text=True)
    assert "Ava" not in _panel(client, token, category="response").get_data(as_text=True)
    assert "Ava" not in _panel(client, token, plan_type="504").get_data(as_text=True)
    assert "Ava" in _panel(client, token, q="quin").get_data(as_text=True)
    assert "No student matches" in _panel(client, token, q="zzz").get_data(as_text=True)


def test_empty_state_is_plain(client, token_for, school, db_session):
    plat = school["plat"]
    empty = f.course(db_session, plat, "Studio Art")
    t = f.person(db_session, plat, "Marlo Fernhill", kind="staff")
    f.enroll(db_session, t, empty, "teacher")
    db_session.commit()
    assert "No student in your sections has an active plan" in _panel(client, token_for(t, empty)).get_data(as_text=True)


def test_acknowledge_then_reopen_on_new_version(client, token_for, school, db_session):
    token = token_for(school["a"], school["alg"])
    html = _panel(client, token).get_data(as_text=True)
    student, plan, v1 = school["plans"]["Ava"]
    item = f"{student.id}:{v1.id}:{school['p1'].id}"
    resp = client.post("/panels/ack", data={"t": token, "csrf_token": _csrf(html), "item": item})
    assert resp.status_code == 303
    # The confirmation is placed beside what was acknowledged: the redirect names the student's row (issue #13).
    assert "done=ack" in resp.headers["Location"]
    assert resp.headers["Location"].endswith(f"#row-{student.id}-{school['p1'].id}")
    done = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'id="row-{student.id}-{school["p1"].id}"' in done and 'role="status" data-result>Acknowledged.' in done
    assert "acknowledged" in _panel(client, token).get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Acknowledgement)) == 1
    # The case manager activates version 2: the acknowledgement re-opens.
    v1 = db_session.get(PlanVersion, v1.id)
    v1.status = "superseded"
    v2 = PlanVersion(plan_id=plan.id, version_no=2, status="active")
    db_session.add(v2)
    db_session.flush()
    db_session.add(Accommodation(plan_version_id=v2.id, category="timing", text="Tests: 2x time", position=0))
    db_session.commit()
    html = _panel(client, token).get_data(as_text=True)
    assert "needs your acknowledgement" in html and "Tests: 2x time" in html
    # A stale form (still naming version 1) is refused and writes nothing.
    resp = client.post("/panels/ack", data={"t": token, "csrf_token": _csrf(html), "item": item})
    assert resp.status_code == 409 and "changed after this page was opened" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Acknowledgement)) == 1


def test_post_without_csrf_is_refused(client, token_for, school):
    token = token_for(school["a"], school["alg"])
    student, _, v1 = school["plans"]["Ava"]
    resp = client.post("/panels/ack", data={"t": token, "item": f"{student.id}:{v1.id}:{school['p1'].id}"})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)


def test_note_is_encrypted_at_rest_escaped_and_revised(client, token_for, school, db_session):
    token = token_for(school["a"], school["alg"])
    student = school["plans"]["Ava"][0]
    page = client.get(f"/panels/student/{student.id}", query_string={"t": token}).get_data(as_text=True)
    secret = "<script>alert(1)</script> Ava used the quiet room today"
    resp = client.post(f"/panels/student/{student.id}/notes", data={
        "t": token, "csrf_token": _csrf(page), "note_type": "observation", "recorded_on": clock.today().isoformat(),
        "visibility": "team", "body": secret})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#add-note")  # shown beside the form
    # The confirmation says where the note went (issue #13): its tier and who may read it.
    done = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Note saved. Saved as: Team (case manager and current teachers)." in done
    raw = db_session.execute(text("SELECT body_encrypted FROM case_notes")).scalar_one()
    assert b"quiet room" not in bytes(raw) and b"<script>" not in bytes(raw)
    page = client.get(f"/panels/student/{student.id}", query_string={"t": token}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Ava used the quiet room today" in page
    assert "<script>alert(1)" not in page
    note = db_session.scalars(select(CaseNote)).one()
    resp = client.post(f"/panels/notes/{note.id}/edit", data={
        "t": token, "csrf_token": _csrf(page), "note_type": "observation", "recorded_on": clock.today().isoformat(),
        "visibility": "team", "body": "Corrected text", "revision_no": "1"})
    assert resp.status_code == 303
    assert db_session.scalar(select(func.count()).select_from(CaseNoteRevision)) == 2
    damaged = client.post(f"/panels/notes/{note.id}/edit", data={
        "t": token, "csrf_token": _csrf(page), "note_type": "observation", "recorded_on": clock.today().isoformat(),
        "visibility": "team", "body": "Other text", "revision_no": "2x"})
    assert damaged.status_code == 400 and "Reload the page" in damaged.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(CaseNoteRevision)) == 2


def test_note_limits_and_outsider_refusal_write_nothing(client, token_for, school, db_session):
    token_a = token_for(school["a"], school["alg"])
    ava = school["plans"]["Ava"][0]
    page = client.get(f"/panels/student/{ava.id}", query_string={"t": token_a}).get_data(as_text=True)
    long = client.post(f"/panels/student/{ava.id}/notes", data={
        "t": token_a, "csrf_token": _csrf(page), "note_type": "other", "recorded_on": clock.today().isoformat(),
        "visibility": "team", "body": "x" * 10_001})
    assert long.status_code == 422 and "limited to 10,000 characters" in long.get_data(as_text=True)
    assert 'data-result data-result-at="add-note"' in long.get_data(as_text=True)  # the error goes beside the form
    # Teacher B (Biology) cannot read or write about Ava (Algebra only), and the refusal is logged.
    token_b = token_for(school["b"], school["bio"])
    assert client.get(f"/panels/student/{ava.id}", query_string={"t": token_b}).status_code == 404
    bpage = _panel(client, token_b).get_data(as_text=True)
    resp = client.post(f"/panels/student/{ava.id}/notes", data={
        "t": token_b, "csrf_token": _csrf(bpage), "note_type": "other", "recorded_on": clock.today().isoformat(),
        "visibility": "team", "body": "should not be written"})
    assert resp.status_code == 404
    assert db_session.scalar(select(func.count()).select_from(CaseNote)) == 0
    denied = db_session.scalars(select(AccessEvent).where(AccessEvent.allowed.is_(False))).all()
    assert denied and all(e.actor_id == school["b"].id for e in denied)


def test_forged_student_id_gets_the_same_answer_as_a_real_one(client, token_for, school):
    token = token_for(school["a"], school["alg"])
    dee = school["plans"]["Dee"][0]
    real = client.get(f"/panels/student/{dee.id}", query_string={"t": token})
    forged = client.get("/panels/student/999999", query_string={"t": token})
    assert real.status_code == forged.status_code == 404
    assert "no student record here that you may see" in forged.get_data(as_text=True)


def test_ended_enrollment_ends_access_at_once(client, token_for, school, db_session):
    from lti_app.models import Enrollment

    token = token_for(school["a"], school["alg"])
    ava = school["plans"]["Ava"][0]
    assert client.get(f"/panels/student/{ava.id}", query_string={"t": token}).status_code == 200
    enr = db_session.scalars(select(Enrollment).where(Enrollment.person_id == school["people"]["Ava"].id)).one()
    enr.state = "deleted"
    db_session.commit()
    assert client.get(f"/panels/student/{ava.id}", query_string={"t": token}).status_code == 404
    assert "Ava" not in _panel(client, token).get_data(as_text=True)


def test_note_tiers_and_restricted_notes_open_by_logged_action(client, token_for, school, db_session, app):
    from lti_app.crypto import cipher

    ava = school["plans"]["Ava"][0]
    for vis, body in [("team", "team note"), ("case_team", "case team note"), ("restricted", "restricted note")]:
        db_session.add(CaseNote(student_id=ava.id, author_id=school["cm"].id, note_type="other",
                                recorded_on=clock.today(), visibility=vis, body_encrypted=cipher().encrypt(body)))
    db_session.commit()
    teacher = client.get(f"/panels/student/{ava.id}", query_string={"t": token_for(school["a"], school["alg"])})
    html = teacher.get_data(as_text=True)
    assert "team note" in html and "case team note" not in html and "Restricted note" not in html
    cm_token = token_for(school["cm"], None, roles=("teacher",))
    html = client.get(f"/panels/student/{ava.id}", query_string={"t": cm_token}).get_data(as_text=True)
    assert "case team note" in html and "Restricted note — hidden" in html and "restricted note<" not in html
    restricted = db_session.scalars(select(CaseNote).where(CaseNote.visibility == "restricted")).one()
    opened = client.post(f"/panels/notes/{restricted.id}/open", data={"t": cm_token, "csrf_token": _csrf(html)})
    assert "restricted note" in opened.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(AccessEvent)
                             .where(AccessEvent.action == "view_restricted", AccessEvent.allowed.is_(True))) == 1


def test_question_to_case_manager_and_answer(client, token_for, school, db_session):
    ava = school["plans"]["Ava"][0]
    token = token_for(school["a"], school["alg"])
    page = client.get(f"/panels/student/{ava.id}", query_string={"t": token}).get_data(as_text=True)
    resp = client.post(f"/panels/student/{ava.id}/question", data={"t": token, "csrf_token": _csrf(page),
                                                                   "body": "Does extended time apply to labs?"})
    assert resp.status_code == 303
    q = db_session.scalars(select(Question)).one()
    assert q.case_manager_id == school["cm"].id and q.status == "open"
    cm_token = token_for(school["cm"], None, roles=("teacher",))
    queue = client.get("/panels/questions", query_string={"t": cm_token}).get_data(as_text=True)
    assert "Does extended time apply to labs?" in queue
    client.post(f"/panels/questions/{q.id}/answer", data={"t": cm_token, "csrf_token": _csrf(queue),
                                                           "body": "Yes, for timed lab quizzes."})
    page = client.get(f"/panels/student/{ava.id}", query_string={"t": token}).get_data(as_text=True)
    assert "Yes, for timed lab quizzes." in page


def test_draft_survives_reload(client, token_for, school):
    ava = school["plans"]["Ava"][0]
    token = token_for(school["a"], school["alg"])
    page = client.get(f"/panels/student/{ava.id}", query_string={"t": token}).get_data(as_text=True)
    assert client.post(f"/panels/student/{ava.id}/draft", data={"t": token, "csrf_token": _csrf(page),
                                                                "body": "half-written thought"}).status_code == 200
    assert "half-written thought" in client.get(f"/panels/student/{ava.id}", query_string={"t": token}).get_data(as_text=True)


def test_students_and_observers_are_refused_everywhere(client, token_for, school):
    ava_person = school["people"]["Ava"]
    token = token_for(ava_person, school["alg"], roles=("student",))
    assert _panel(client, token).status_code == 403
    assert client.get(f"/panels/student/{school['plans']['Ava'][0].id}", query_string={"t": token}).status_code == 404


def test_expired_or_forged_token_is_refused(client, school):
    assert client.get("/panels/course", query_string={"t": "forged"}).status_code == 401
    assert client.get("/panels/course").status_code == 401


def test_case_manager_sees_who_viewed_the_record_and_teachers_do_not(client, token_for, school):
    ava = school["plans"]["Ava"][0]
    teacher_token = token_for(school["a"], school["alg"])
    teacher_page = client.get(f"/panels/student/{ava.id}", query_string={"t": teacher_token}).get_data(as_text=True)
    assert "Who viewed this record" not in teacher_page
    client.get(f"/panels/student/{ava.id}", query_string={"t": token_for(school["b"], school["bio"])})  # refused
    cm_page = client.get(f"/panels/student/{ava.id}",
                         query_string={"t": token_for(school["cm"], None, roles=("teacher",))}).get_data(as_text=True)
    assert "Back to my caseload" in cm_page and "Back to the course" not in cm_page
    section = cm_page.split('id="who-viewed"', 1)[1]
    assert "Rowan Ellery" in section and "teacher enrollment in Algebra I (Period 1)" in section
    assert "Sable Whitlock" in section and "refused" in section


def test_panel_lists_every_accommodation_groups_by_section_and_filters_by_section(client, token_for, school,
                                                                                  db_session):
    """Issue #13: every accommodation of each student is on the page (no disclosure), a teacher of two periods sees
    the students grouped by period, and the period filter narrows the list (and "acknowledge all" with it)."""
    alg = school["alg"]
    p2 = next(s for s in alg.sections if s.name == "Period 2")
    f.enroll(db_session, school["a"], alg, "teacher", p2)
    db_session.commit()
    token = token_for(school["a"], alg)
    html = _panel(client, token).get_data(as_text=True)
    assert "<details" not in html
    assert "Tests: 1.5x time" in html and "Seat near the front" in html and "Copy of notes" in html
    assert html.index(f'id="section-{school["p1"].id}"') < html.index("Seat near the front")
    assert html.index(f'id="section-{p2.id}"') < html.index("Copy of notes")
    only_p2 = _panel(client, token, section=str(p2.id)).get_data(as_text=True)
    assert "Copy of notes" in only_p2 and "Seat near the front" not in only_p2
    ava, ben = school["plans"]["Ava"][0].id, school["plans"]["Ben"][0].id
    assert f'value="{ben}:' in only_p2 and f'value="{ava}:' not in only_p2  # acknowledge-all covers only Ben
    assert _panel(client, token, section="x").status_code == 200  # a malformed section id is ignored, never a 500
