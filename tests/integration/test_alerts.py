"""Alerts and reminders (issue #13): schedule changes against the snapshot, answered questions, daily deadline
reminders in district time, the inbox, preferences, and e-mail through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app.crypto import cipher
from lti_app.models import (
    Accommodation,
    Alert,
    AlertPreference,
    Plan,
    PlanVersion,
    Question,
    RoleGrant,
    Student,
    StudentLink,
)
from lti_app.services.alerts import delivery, job
from lti_app.services.roster import primitives as roster
from tests.support import factories as f
from tests.support.casework_world import Client
from tests.support.smtp_server import SmtpServer

T0 = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # 09:00 in Chicago (the test district's zone)
SECRET_ACCOMMODATION = "Tests in the resource room with 1.5x time"
SECRET_QUESTION = "Sam panics when the timer is shown, what should I do"
SECRET_ANSWER = "Hide the timer and give a five-minute warning instead"


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp.url, "mail_from": "Caseload <caseload@district.example.test>"}


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    s = db_session
    plat = f.platform(s, name="district-moodle")
    bio = f.course(s, plat, "Biology")
    p3, p5 = f.section(s, bio, "103", "Period 3"), f.section(s, bio, "105", "Period 5")
    art = f.course(s, plat, "Studio Art")
    w: dict[str, Any] = {"platform": plat, "bio": bio, "p3": p3, "p5": p5, "art": art}
    w["reed"] = f.person(s, plat, "Morgan Reed", kind="staff", email="m.reed@district.example.test")
    w["ash"] = f.person(s, plat, "Jules Ash", kind="staff", email="j.ash@district.example.test")
    w["cm"] = f.person(s, plat, "Tamsin Larkspur", kind="staff", email="t.larkspur@district.example.test")
    w["sam_person"] = f.person(s, plat, "Sam Alder", sis_id="S-1")
    w["kit_person"] = f.person(s, plat, "Kit Brook", sis_id="S-2")
    s.add(RoleGrant(person_id=w["cm"].id, role="case_manager"))
    f.enroll(s, w["reed"], bio, "teacher", p3)
    f.enroll(s, w["ash"], bio, "teacher", p5)
    f.enroll(s, w["ash"], art, "teacher")
    f.enroll(s, w["sam_person"], art, "student")
    f.enroll(s, w["kit_person"], art, "student")
    for key, sis, given, family in (("sam", "S-1", "Sam", "Alder"), ("kit", "S-2", "Kit", "Brook")):
        student = Student(sis_id=sis, given_name=given, family_name=family, grade="9")
        s.add(student)
        s.flush()
        plan = Plan(student_id=student.id, plan_type="IEP", status="active", case_manager_id=w["cm"].id)
        s.add(plan)
        s.flush()
        version = PlanVersion(plan_id=plan.id, version_no=1, status="active")
        s.add(version)
        s.flush()
        s.add(Accommodation(plan_version_id=version.id, category="setting", text=SECRET_ACCOMMODATION))
        w[key], w[f"{key}_plan"], w[f"{key}_version"] = student, plan, version
    s.commit()
    return w


def run(app: Any, db_session: Any, now: dt.datetime = T0) -> job.RunReport:
    db_session.expire_all()
    return job.run(db_session, app.config["CASELOAD"], now=now)


def enroll(db_session: Any, person: Any, course: Any, section: Any, state: str = "active", source: str = "webhook",
           when: dt.datetime = T0) -> None:
    roster.apply_enrollment(db_session, person=person, course=course, section=section, role="student", state=state,
                            source=source, source_time=when)
    db_session.commit()


def alerts(db_session: Any, person: Any, kind: str | None = None) -> list[Alert]:
    db_session.expire_all()
    stmt = select(Alert).where(Alert.recipient_id == person.id)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    return list(db_session.scalars(stmt.order_by(Alert.id)))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_first_run_is_a_baseline_and_a_join_alerts_the_case_manager_once(app, db_session, world, smtp):
    first = run(app, db_session)
    assert first.new_alerts == 0 and first.baselined == 2  # Sam and Kit in Studio Art: a starting point, not news
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    report = run(app, db_session, T0 + dt.timedelta(minutes=1))
    assert (report.joined, report.left, report.new_alerts) == (1, 0, 1)
    [alert] = alerts(db_session, world["cm"])
    assert alert.kind == "schedule_change" and alert.student_id == world["sam"].id
    assert alert.title == "Sam Alder joined Biology — Period 3"
    assert alert.lines == [["Morgan Reed has not acknowledged yet.", world["sam"].id]]
    again = run(app, db_session, T0 + dt.timedelta(minutes=2))
    assert again.new_alerts == 0 and again.delivery.sent_messages == 0  # a rerun tells nobody anything twice
    assert len(alerts(db_session, world["cm"])) == 1
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "t.larkspur@district.example.test"
    assert mail["Subject"] == "Caseload: Sam Alder joined Biology — Period 3"


def test_leaving_a_class_and_rejoining_it_alert_each_time(app, db_session, world):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["art"], f.section(db_session, world["art"], ""), state="deleted",
           when=T0 + dt.timedelta(seconds=1))
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    enroll(db_session, world["sam_person"], world["art"], f.section(db_session, world["art"], ""),
           when=T0 + dt.timedelta(minutes=2))
    run(app, db_session, T0 + dt.timedelta(minutes=3))
    assert [a.title for a in alerts(db_session, world["cm"])] == ["Sam Alder left Studio Art",
                                                                  "Sam Alder joined Studio Art"]


def test_a_change_reported_by_two_sources_alerts_once(app, db_session, world):
    run(app, db_session)
    # Canvas-style: the section is known; NRPS-style: the same class seen course-wide, a minute later.
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], source="webhook")
    enroll(db_session, world["sam_person"], world["bio"], f.section(db_session, world["bio"], ""), source="nrps",
           when=T0 + dt.timedelta(minutes=1))
    report = run(app, db_session, T0 + dt.timedelta(minutes=2))
    assert report.joined == 1
    assert [a.title for a in alerts(db_session, world["cm"])] == ["Sam Alder joined Biology — Period 3"]


def test_learning_the_section_of_a_class_is_not_a_change_but_moving_sections_is(app, db_session, world):
    enroll(db_session, world["sam_person"], world["bio"], f.section(db_session, world["bio"], ""), source="nrps")
    run(app, db_session)  # baseline: Sam in Biology, section unknown
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], when=T0 + dt.timedelta(seconds=1))
    assert run(app, db_session, T0 + dt.timedelta(minutes=1)).new_alerts == 0  # every Biology teacher saw Sam
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], state="deleted",
           when=T0 + dt.timedelta(minutes=2))
    enroll(db_session, world["sam_person"], world["bio"], world["p5"], when=T0 + dt.timedelta(minutes=2))
    run(app, db_session, T0 + dt.timedelta(minutes=3))
    titles = sorted(a.title for a in alerts(db_session, world["cm"]))
    assert titles == ["Sam Alder joined Biology — Period 5", "Sam Alder left Biology — Period 3"]


def test_a_student_whose_plan_starts_is_a_baseline_and_one_whose_plan_ends_is_no_longer_followed(
        app, db_session, world):
    run(app, db_session)
    world["kit_plan"].status = "ended"
    db_session.commit()
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    enroll(db_session, world["kit_person"], world["bio"], world["p3"], when=T0 + dt.timedelta(minutes=2))
    assert run(app, db_session, T0 + dt.timedelta(minutes=3)).new_alerts == 0
    world["kit_plan"].status = "active"
    db_session.commit()
    report = run(app, db_session, T0 + dt.timedelta(minutes=4))
    assert report.new_alerts == 0 and report.baselined == 2


def test_the_new_teacher_sees_the_student_marked_new_until_they_acknowledge(app, client, db_session, world, token_for):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    reed = Client(client, token_for(world["reed"], world["bio"]))
    page = reed.get("/panels/course").get_data(as_text=True)
    assert "new in your class" in page
    resp = reed.post("/panels/ack", {"item": f"{world['sam'].id}:{world['sam_version'].id}:{world['p3'].id}"})
    assert resp.status_code == 303
    assert "new in your class" not in reed.get("/panels/course").get_data(as_text=True)
    # The case manager's inbox shows who has acknowledged now; the stored line (what the e-mail said) is unchanged.
    inbox = Client(client, token_for(world["cm"], roles=("staff",))).get("/alerts/").get_data(as_text=True)
    assert "Acknowledged by Morgan Reed." in inbox and "has not acknowledged yet" not in inbox
    assert alerts(db_session, world["cm"])[0].lines == [["Morgan Reed has not acknowledged yet.", world["sam"].id]]
    # Kit was in Studio Art from the start (baseline): never "new" there.
    ash = Client(client, token_for(world["ash"], world["art"]))
    assert "new in your class" not in ash.get("/panels/course").get_data(as_text=True)


def test_burst_of_changes_is_one_email_per_person_without_note_or_accommodation_text(app, db_session, world, smtp):
    run(app, db_session)
    for person in (world["sam_person"], world["kit_person"]):
        enroll(db_session, person, world["bio"], world["p3"])
        enroll(db_session, person, world["art"], f.section(db_session, world["art"], ""), state="deleted",
               when=T0 + dt.timedelta(seconds=1))
    report = run(app, db_session, T0 + dt.timedelta(minutes=1))
    assert report.new_alerts == 4 and report.delivery.sent_messages == 1
    [mail] = smtp.wait_for(1)
    body = mail.get_content()
    assert mail["Subject"] == "Caseload: 4 alerts"
    for title in ("Sam Alder joined Biology — Period 3", "Kit Brook left Studio Art"):
        assert title in body
    assert SECRET_ACCOMMODATION not in body
    assert "http://127.0.0.1:5000/alerts/" in body
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].startswith("<http://127.0.0.1:5000/alerts/unsubscribe/")
    assert {a.email_status for a in alerts(db_session, world["cm"])} == {"sent"}


def test_rfc_8058_one_click_unsubscribe_stops_that_kind_of_email_only(app, client, db_session, world, smtp):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    [mail] = smtp.wait_for(1)
    url = mail["List-Unsubscribe"].strip("<>").replace("http://127.0.0.1:5000", "")
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Stop these e-mails?" in confirm.get_data(as_text=True)
    resp = client.post(url, data={"List-Unsubscribe": "One-Click"})  # what a mail program posts (RFC 8058 §3.2)
    assert resp.status_code == 200 and "no longer get schedule changes by e-mail" in resp.get_data(as_text=True)
    db_session.expire_all()
    pref = db_session.get(AlertPreference, world["cm"].id)
    assert (pref.schedule_change, pref.deadline, pref.question_answered) == ("inbox", "email", "email")
    enroll(db_session, world["kit_person"], world["bio"], world["p3"])
    report = run(app, db_session, T0 + dt.timedelta(minutes=2))
    assert report.new_alerts == 1 and report.delivery.sent_messages == 0  # in the inbox, not by e-mail
    assert alerts(db_session, world["cm"])[-1].email_status == "skipped"
    assert client.post(url[:-4] + "xxxx").status_code == 400  # a damaged link changes nothing


def test_daily_digest_waits_for_the_district_morning_then_sends_once(app, db_session, world, smtp):
    run(app, db_session)
    db_session.add(AlertPreference(person_id=world["cm"].id, email_mode="daily", schedule_change="email",
                                   deadline="off", question_answered="email", last_digest_on=dt.date(2026, 12, 7)))
    db_session.commit()
    evening = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)  # 20:00 on 7 Dec in Chicago
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], when=evening)
    report = run(app, db_session, evening)
    assert report.new_alerts == 1 and report.delivery.waiting == 1 and report.delivery.sent_messages == 0
    before_six = dt.datetime(2026, 12, 8, 11, 30, tzinfo=dt.UTC)  # 05:30 on 8 Dec in Chicago
    assert run(app, db_session, before_six).delivery.sent_messages == 0
    morning = dt.datetime(2026, 12, 8, 12, 5, tzinfo=dt.UTC)  # 06:05
    assert run(app, db_session, morning).delivery.sent_messages == 1
    assert run(app, db_session, morning + dt.timedelta(minutes=1)).delivery.sent_messages == 0
    assert len(smtp.wait_for(1)) == 1
    db_session.expire_all()
    assert db_session.get(AlertPreference, world["cm"].id).last_digest_on == dt.date(2026, 12, 8)


def test_deadline_reminders_list_overdue_7_and_30_days_once_per_district_day(app, db_session, world, smtp):
    today = dt.date(2026, 12, 7)
    world["sam_plan"].annual_review_due = today + dt.timedelta(days=3)
    world["sam_plan"].reevaluation_due = today - dt.timedelta(days=2)
    world["kit_plan"].annual_review_due = today + dt.timedelta(days=20)
    world["kit_plan"].reevaluation_due = today + dt.timedelta(days=400)
    db_session.commit()
    early = dt.datetime(2026, 12, 7, 11, 0, tzinfo=dt.UTC)  # 05:00 in Chicago, before CASELOAD_ALERTS_DAILY_HOUR
    assert run(app, db_session, early).reminders == 0
    report = run(app, db_session, T0)
    assert report.reminders == 1
    [alert] = alerts(db_session, world["cm"], "deadline")
    assert alert.dedupe_key == "deadline:2026-12-07"
    assert alert.title == "Deadlines: 1 overdue · 1 due within 7 days · 1 more within 30 days"
    lines = [text for text, _ in alert.lines]
    assert lines == ["Overdue: Sam Alder — reevaluation (IEP), due Dec 5, 2026",
                     "Within 7 days: Sam Alder — annual review (IEP), due Dec 10, 2026",
                     "Within 30 days: Kit Brook — annual review (IEP), due Dec 27, 2026"]
    # 03:00 UTC on 8 Dec is still 7 Dec in Chicago: no second reminder that day.
    assert run(app, db_session, dt.datetime(2026, 12, 8, 3, 0, tzinfo=dt.UTC)).reminders == 0
    assert run(app, db_session, dt.datetime(2026, 12, 8, 13, 0, tzinfo=dt.UTC)).reminders == 1
    mails = smtp.wait_for(2)
    assert all(SECRET_ACCOMMODATION not in m.get_content() for m in mails)


def test_reminder_windows_follow_the_district_setting(app, db_session, world):
    app.config["CASELOAD"] = type(app.config["CASELOAD"])(**{**app.config["CASELOAD"].__dict__,
                                                             "reminder_windows_days": [14]})
    world["sam_plan"].annual_review_due = dt.date(2026, 12, 17)
    world["kit_plan"].annual_review_due = dt.date(2026, 12, 27)
    db_session.commit()
    run(app, db_session)
    [alert] = alerts(db_session, world["cm"], "deadline")
    assert alert.title == "Deadlines: 1 due within 14 days"


def _ask_and_answer(db_session: Any, world: dict[str, Any], answered_at: dt.datetime) -> Question:
    q = Question(student_id=world["sam"].id, asked_by_id=world["reed"].id, case_manager_id=world["cm"].id,
                 course_id=world["bio"].id, body_encrypted=cipher().encrypt(SECRET_QUESTION), status="answered",
                 answer_encrypted=cipher().encrypt(SECRET_ANSWER), answered_by_id=world["cm"].id,
                 answered_at=answered_at, created_at=answered_at - dt.timedelta(hours=1))
    db_session.add(q)
    db_session.commit()
    return q


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_the_teacher_is_told_when_their_question_is_answered_without_its_text(app, client, db_session, world, smtp,
                                                                               token_for):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    _ask_and_answer(db_session, world, T0 + dt.timedelta(minutes=1))
    report = run(app, db_session, T0 + dt.timedelta(minutes=2))
    assert report.questions == 1
    [alert] = alerts(db_session, world["reed"])
    assert (alert.kind, alert.title) == ("question_answered", "Your question about Sam Alder was answered")
    assert run(app, db_session, T0 + dt.timedelta(minutes=3)).questions == 0
    mail = next(m for m in smtp.wait_for(2) if m["To"] == "m.reed@district.example.test")
    assert SECRET_QUESTION not in mail.get_content() and SECRET_ANSWER not in mail.get_content()
    reed = Client(client, token_for(world["reed"], world["bio"]))
    resp = reed.get(f"/alerts/{alert.id}/open")
    assert resp.status_code == 303 and f"/panels/student/{world['sam'].id}" in resp.headers["Location"]


def test_questions_answered_before_alerting_began_are_not_announced(app, db_session, world):
    _ask_and_answer(db_session, world, T0 - dt.timedelta(days=3))
    assert run(app, db_session).questions == 0


def test_case_manager_queue_shows_when_which_course_and_section_and_links_the_student(app, client, db_session, world,
                                                                                      token_for):
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    q = _ask_and_answer(db_session, world, T0)
    q.status, q.answer_encrypted, q.answered_at = "open", None, None
    db_session.commit()
    cm = Client(client, token_for(world["cm"], roles=("staff",)))
    page = cm.get("/panels/questions").get_data(as_text=True)
    assert "Biology — Period 3" in page
    assert f'href="/casework/students/{world["sam"].id}?t=' in page
    assert "Dec 7, 2026, 8:00 AM CST" in page  # asked at 14:00 UTC: shown in district time


def test_inbox_shows_unread_count_in_the_header_marks_read_and_logs_the_students_shown(app, client, db_session, world,
                                                                                        token_for):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    enroll(db_session, world["kit_person"], world["bio"], world["p5"])
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    cm = Client(client, token_for(world["cm"], roles=("staff",)))
    page = cm.get("/alerts/").get_data(as_text=True)
    assert 'id="unread-alerts">2<' in page and "2 unread alerts" in page
    assert "Sam Alder joined Biology — Period 3" in page and "Kit Brook joined Biology — Period 5" in page
    from lti_app.models import AccessEvent

    logged = set(db_session.scalars(select(AccessEvent.student_id).where(AccessEvent.context == "alerts inbox",
                                                                           AccessEvent.allowed.is_(True))))
    assert logged == {world["sam"].id, world["kit"].id}
    sam_alert = next(a for a in alerts(db_session, world["cm"]) if a.student_id == world["sam"].id)
    assert cm.post("/alerts/read", {"alert": str(sam_alert.id)}).status_code == 303
    page = cm.get("/alerts/").get_data(as_text=True)
    assert 'id="unread-alerts">1<' in page
    resp = cm.get(f"/alerts/{sam_alert.id}/open")
    assert resp.status_code == 303 and f"/casework/students/{world['sam'].id}" in resp.headers["Location"]
    assert cm.post("/alerts/read", {"all": "1"}).status_code == 303
    assert 'id="unread-alerts"' not in cm.get("/alerts/").get_data(as_text=True)


def test_someone_elses_alert_cannot_be_opened_or_marked_read(app, client, db_session, world, token_for):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    [alert] = alerts(db_session, world["cm"])
    ash = Client(client, token_for(world["ash"], world["bio"]))
    assert ash.get(f"/alerts/{alert.id}/open").status_code == 404
    assert ash.post("/alerts/read", {"alert": str(alert.id)}).status_code == 303
    db_session.expire_all()
    assert db_session.get(Alert, alert.id).read_at is None
    assert ash.post("/alerts/read", {"alert": "99999999999999999999"}).status_code == 400


def test_an_alert_about_a_student_the_teacher_no_longer_teaches_is_shown_without_the_name(app, client, db_session,
                                                                                          world, token_for):
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    _ask_and_answer(db_session, world, T0 + dt.timedelta(minutes=1))
    run(app, db_session, T0 + dt.timedelta(minutes=2))
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], state="deleted",
           when=T0 + dt.timedelta(minutes=3))
    page = Client(client, token_for(world["reed"], world["bio"])).get("/alerts/").get_data(as_text=True)
    assert "Sam Alder" not in page and "a student whose record you may no longer see" in page


def test_preferences_choose_what_arrives_and_bad_values_change_nothing(app, client, db_session, world, token_for):
    cm = Client(client, token_for(world["cm"], roles=("staff",)))
    assert cm.get("/alerts/settings").status_code == 200
    bad = cm.post("/alerts/settings", {"email_mode": "hourly", "schedule_change": "email", "deadline": "email",
                                       "question_answered": "email"})
    assert bad.status_code == 400 and "immediately or once a day" in bad.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(AlertPreference)) == 0
    ok = cm.post("/alerts/settings", {"email_mode": "immediate", "schedule_change": "off", "deadline": "inbox",
                                      "question_answered": "email"})
    assert ok.status_code == 303
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    assert run(app, db_session, T0 + dt.timedelta(minutes=1)).new_alerts == 0  # schedule changes: off


def test_without_smtp_alerts_stay_in_the_inbox(app, db_session, world, smtp):
    app.config["CASELOAD"] = type(app.config["CASELOAD"])(**{**app.config["CASELOAD"].__dict__, "smtp_url": ""})
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    report = run(app, db_session, T0 + dt.timedelta(minutes=1))
    assert report.new_alerts == 1 and report.delivery.skipped == 1 and not smtp.messages


def test_a_refused_recipient_is_skipped_and_others_still_get_their_email(app, db_session, world, smtp):
    smtp.handler.refuse.add("t.larkspur@district.example.test")
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    _ask_and_answer(db_session, world, T0 + dt.timedelta(minutes=1))
    report = run(app, db_session, T0 + dt.timedelta(minutes=2))
    assert report.delivery.sent_messages == 1
    assert [m["To"] for m in smtp.wait_for(1)] == ["m.reed@district.example.test"]
    assert alerts(db_session, world["cm"])[0].email_status == "skipped"


def test_an_unreachable_smtp_server_leaves_alerts_pending_for_the_next_run(app, db_session, world, smtp):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings = app.config["CASELOAD"]
    app.config["CASELOAD"] = type(settings)(**{**settings.__dict__, "smtp_url": f"smtp://127.0.0.1:{closed}"})
    run(app, db_session)
    enroll(db_session, world["sam_person"], world["bio"], world["p3"])
    report = run(app, db_session, T0 + dt.timedelta(minutes=1))
    assert report.delivery.error and "Could not connect" in report.delivery.error
    assert alerts(db_session, world["cm"])[0].email_status == "pending"
    app.config["CASELOAD"] = settings
    assert run(app, db_session, T0 + dt.timedelta(minutes=2)).delivery.sent_messages == 1
    assert len(smtp.wait_for(1)) == 1


def test_caseload_alerts_run_command_reports_and_is_idempotent(app, runner, db_session, world, smtp):
    from lti_app.cli import main

    first = runner.invoke(main, ["alerts", "run"])
    assert first.exit_code == 0, first.output
    assert "2 placements recorded as the starting point" in first.output
    enroll(db_session, world["sam_person"], world["bio"], world["p3"], when=dt.datetime.now(dt.UTC))
    second = runner.invoke(main, ["alerts", "run"])
    assert "schedule changes: 1 joined" in second.output and "1 e-mails sent" in second.output
    third = runner.invoke(main, ["alerts", "run"])
    assert third.output.startswith("0 new alerts") and "0 e-mails sent" in third.output


def test_unsubscribe_token_is_bound_to_person_and_kind(app, db_session, world):
    token = delivery.unsubscribe_token(world["cm"].id, ["deadline"])
    assert delivery.read_unsubscribe_token(token) == (world["cm"].id, ["deadline"])
    with pytest.raises(delivery.UnsubscribeInvalid):
        delivery.read_unsubscribe_token(token.replace(token[-3:], "abc"))


def test_link_persons_by_sis_id_before_comparing(app, db_session, world):
    """A student who arrives through a roster source, never linked by a page yet, is still followed."""
    run(app, db_session)
    newcomer = f.person(db_session, world["platform"], "Sam Alder", sis_id="S-1", lti_sub="other-sub")
    db_session.commit()
    enroll(db_session, newcomer, world["bio"], world["p5"])
    run(app, db_session, T0 + dt.timedelta(minutes=1))
    assert db_session.scalar(select(StudentLink.student_id).where(StudentLink.person_id == newcomer.id)) == world["sam"].id
    assert [a.title for a in alerts(db_session, world["cm"])] == ["Sam Alder joined Biology — Period 5"]


def test_the_alerts_job_is_on_beat_and_runs_eagerly_through_dispatch_in_the_embedded_mode(app, db_session, world):
    from lti_app.services.dispatch import ALERTS_RUN, enqueue

    celery = app.extensions["celery"]
    entry = celery.conf.beat_schedule["alerts-run"]
    assert (entry["task"], entry["schedule"]) == (ALERTS_RUN, float(app.config["CASELOAD"].alerts_poll_seconds))
    enqueue(ALERTS_RUN)  # no broker: runs in-process, like beat's tick on a worker
    db_session.expire_all()
    from lti_app.models import AlertState, AlertWatch

    assert db_session.get(AlertState, 1) is not None
    assert db_session.scalar(select(func.count()).select_from(AlertWatch)) == 2
