"""The student workspace: tabs, who may open it (and the refusals, logged), read-only support staff, the access
log of the record, CSRF, escaping."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.models import AccessEvent, Contact
from tests.support import casework_world
from tests.support.casework_world import Client, text_of

TABS = ["overview", "services", "timeline", "contacts", "viewers"]


def _path(student, tab):
    return f"/casework/students/{student.id}" + ("" if tab == "overview" else f"/{tab}")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_case_manager_opens_every_tab_and_each_read_is_logged_with_its_basis(app, client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    for tab in TABS:
        resp = cm.get(_path(w["ava"], tab))
        assert resp.status_code == 200, tab
        html = resp.get_data(as_text=True)
        assert "Ava Quinlan" in html and 'aria-current="page"' in html
        assert "caseload (case manager)" in text_of(resp)
    events = db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == w["cm"].id)
                                .order_by(AccessEvent.id)).all()
    assert [(e.action, e.allowed, e.basis, e.student_id) for e in events] == \
        [("view_casework", True, "caseload (case manager)", w["ava"].id)] * 5
    assert [e.context for e in events] == ["workspace: overview", "workspace: services", "workspace: timeline",
                                           "workspace: contacts and meetings", "workspace: who viewed this record"]


def test_tab_bar_shows_a_tab_only_when_its_endpoint_exists(app, client, token_for, db_session):
    w = casework_world.build(db_session)
    html = Client(client, token_for(w["cm"])).get(_path(w["ava"], "overview")).get_data(as_text=True)
    start = html.index('aria-label="Student record"')
    nav = html[start:html.index("</nav>", start)]
    for endpoint, label in [("plans.plan_home", "Plan &amp; accommodations"), ("goals.goals_home", "Goals &amp; progress")]:
        assert (label in nav) is (endpoint in app.view_functions)
    for label in ("Overview", "Services", "Notes &amp; timeline", "Contacts &amp; meetings", "Who viewed this record"):
        assert label in nav


def test_caseload_rows_open_the_workspace(client, token_for, db_session):
    w = casework_world.build(db_session)
    html = Client(client, token_for(w["cm"])).get("/casework/").get_data(as_text=True)
    assert f'href="/casework/students/{w["ava"].id}?t=' in html


def test_case_manager_outside_their_caseload_gets_a_clear_403_and_the_refusal_is_logged(client, token_for, db_session):
    w = casework_world.build(db_session)
    other = Client(client, token_for(w["other_cm"]))
    resp = other.get(_path(w["ava"], "services"))
    assert resp.status_code == 403 and "not on your caseload" in text_of(resp)
    post = other.post(f"/casework/students/{w['ava'].id}/contacts",
                      {"contacted_on": clock.today().isoformat(), "method": "phone", "direction": "out", "summary": "x"})
    assert post.status_code == 403
    assert db_session.scalar(select(func.count(Contact.id))) == 0
    refused = db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == w["other_cm"].id)).all()
    assert [(e.action, e.allowed, e.student_id) for e in refused] == [
        ("view_casework", False, w["ava"].id), ("update_casework", False, w["ava"].id)]
    assert all("not on your caseload" in e.basis for e in refused)
    assert other.get(_path(w["ben"], "services")).status_code == 200  # their own student


def test_teachers_students_and_strangers_are_refused_and_logged(client, token_for, db_session):
    w = casework_world.build(db_session)
    teacher = client.get(_path(w["ava"], "overview"), query_string={"t": token_for(w["teacher"], w["course"])})
    assert teacher.status_code == 403 and "student card" in text_of(teacher)
    student = client.get(_path(w["ava"], "timeline"),
                         query_string={"t": token_for(w["ava_person"], w["course"], roles=("student",))})
    assert student.status_code == 404 and "Ava" not in student.get_data(as_text=True)
    missing = client.get("/casework/students/999999", query_string={"t": token_for(w["cm"])})
    assert missing.status_code == 404
    assert client.get(_path(w["ava"], "overview")).status_code == 401
    rows = db_session.execute(select(AccessEvent.actor_id, AccessEvent.allowed, AccessEvent.basis)
                              .order_by(AccessEvent.id)).all()
    assert [(a, ok) for a, ok, _ in rows] == [(w["teacher"].id, False), (w["ava_person"].id, False),
                                              (w["cm"].id, False)]
    assert "does not allow 'view_casework'" in rows[0][2] and "students and observers" in rows[1][2]


def test_counselor_and_administrator_read_but_cannot_change(client, token_for, db_session):
    w = casework_world.build(db_session)
    for token in (token_for(w["counselor"], roles=()), token_for(w["admin"], roles=("admin",))):
        reader = Client(client, token)
        page = reader.get(_path(w["ava"], "contacts"))
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Record a contact" not in html and "Only the student's case manager can change casework" in text_of(page)
        resp = reader.post(f"/casework/students/{w['ava'].id}/referrals",
                           {"referral_type": "tutoring", "referred_to": "x", "reason": "x",
                            "referred_on": clock.today().isoformat()})
        assert resp.status_code == 403 and "Only the student's case manager" in text_of(resp)
    counselor_tabs = Client(client, token_for(w["counselor"], roles=())).get(_path(w["ava"], "overview"))
    assert "Who viewed this record" not in counselor_tabs.get_data(as_text=True).split("</nav>")[0]
    assert "Only the student's case manager and administrators" in text_of(
        Client(client, token_for(w["counselor"], roles=())).get(_path(w["ava"], "viewers")))


def test_who_viewed_lists_the_records_reads_and_refusals(client, token_for, db_session):
    w = casework_world.build(db_session)
    Client(client, token_for(w["other_cm"])).get(_path(w["ava"], "services"))
    Client(client, token_for(w["counselor"], roles=())).get(_path(w["ava"], "timeline"))
    page = text_of(Client(client, token_for(w["cm"])).get(_path(w["ava"], "viewers")))
    assert "Perrin Galloway viewed casework refused workspace: services" in page
    assert "Wren Ashgrove viewed casework workspace: timeline counselor grant (school support staff)" in page


def test_every_form_needs_csrf_and_nothing_is_written_without_it(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    for path in ("/contacts", "/meetings", "/referrals", "/crisis", "/services"):
        resp = cm.post(base + path, {"summary": "x"}, csrf=False)
        assert resp.status_code == 400, path
    other_launch = Client(client, token_for(w["cm"]))  # same person, another launch: another CSRF token
    other_launch.get(_path(w["ava"], "contacts"))
    forged = client.post(base + "/contacts", data={"t": cm.token, "csrf_token": other_launch._csrf,
                                                   "contacted_on": clock.today().isoformat(), "method": "phone",
                                                   "direction": "out", "summary": "x"})
    assert forged.status_code == 400
    assert db_session.scalar(select(func.count(Contact.id))) == 0


def test_text_is_escaped_everywhere_it_is_shown(client, token_for, db_session):
    w = casework_world.build(db_session)
    db_session.add(Contact(student_id=w["ava"].id, contacted_on=clock.today(), method="phone", direction="out",
                           contact_with='<img src=x onerror="alert(1)">',
                           summary_encrypted=cipher().encrypt("<script>alert('x')</script>"),
                           follow_up_on=clock.today()))
    db_session.commit()
    cm = Client(client, token_for(w["cm"]))
    for tab in ("contacts", "timeline", "overview"):
        html = cm.get(_path(w["ava"], tab)).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in cm.get(_path(w["ava"], "contacts")).get_data(as_text=True)
