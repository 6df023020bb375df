"""OneRoster pulls (full and delta) against a local OneRoster 1.2 server, on a real database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lti_app.models import Enrollment, Person, Platform, SyncRun
from lti_app.services.roster import oneroster as reconcile_oneroster
from lti_app.services.roster import primitives as roster
from lti_app.services.roster import reconcile
from tests.support import factories as f
from tests.support.nrps_platform import NrpsTestPlatform, make_tool_key, member
from tests.support.oneroster_server import OneRosterServer


@pytest.fixture
def sis():
    with OneRosterServer(max_limit=2) as server:  # tiny pages: every collection is paged
        yield server


@pytest.fixture
def district(db_session, sis):
    """A Canvas platform with OneRoster configured, a course matched by SIS id and a section matched by SIS id."""
    plat = f.platform(db_session, lms="canvas", name="district")
    algebra = f.course(db_session, plat, title="Algebra I", lti_context_id="ctx-alg", sis_id="class-alg")
    biology = f.course(db_session, plat, title="Biology", lti_context_id="ctx-bio")
    period2 = roster.ensure_section(db_session, biology, "88", name="Biology P2", sis_id="class-bio-p2")
    known = f.person(db_session, plat, name="Avery Quinlan", lti_sub="canvas-sub-avery", sis_id="stu-1")
    db_session.commit()
    reconcile_oneroster.configure(db_session, plat, base_url=sis.base_url, token_url=sis.token_url,
                                  client_id=sis.client_id, client_secret=sis.client_secret)
    sis.klass("class-alg", "Algebra I")
    sis.klass("class-bio-p2", "Biology P2")
    sis.klass("class-art", "Art (no Caseload course)")
    sis.user("stu-1", "Avery", "Quinlan")
    sis.user("stu-2", "Sage", "Whitcombe", identifier="S-0002")
    sis.user("stu-3", "Jules", "Marlowe")
    sis.user("tch-1", "Rowan", "Ellery", role="teacher")
    sis.enroll("e1", "stu-1", "class-alg")
    sis.enroll("e2", "stu-2", "class-alg")
    sis.enroll("e3", "stu-3", "class-bio-p2")
    sis.enroll("e4", "tch-1", "class-alg", role="teacher")
    sis.enroll("e5", "stu-3", "class-art")
    return {"platform": plat, "algebra": algebra, "biology": biology, "period2": period2, "known": known}


def _rows(db_session, plat):
    db_session.expire_all()
    rows = db_session.execute(select(Person.sis_id, Enrollment.course_id, Enrollment.section_id, Enrollment.role,
                                     Enrollment.state, Enrollment.source)
                              .join(Person, Person.id == Enrollment.person_id)
                              .where(Person.platform_id == plat.id)).all()
    return {(r.sis_id, r.course_id, r.section_id, r.role): (r.state, r.source) for r in rows}


def _pull(db_session, plat, **kw):
    return reconcile_oneroster.pull(db_session, plat.id, **kw)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_first_pull_is_full_and_maps_classes_to_courses_and_sections(db_session, sis, district):
    plat, algebra = district["platform"], district["algebra"]
    biology, period2 = district["biology"], district["period2"]

    outcome = _pull(db_session, plat)

    assert outcome.ok, outcome.error
    alg_wide = roster.course_wide_section(db_session, algebra).id
    known_sis = "stu-1"
    assert _rows(db_session, plat) == {
        (known_sis, algebra.id, alg_wide, "student"): ("active", "oneroster"),
        ("stu-2", algebra.id, alg_wide, "student"): ("active", "oneroster"),
        ("tch-1", algebra.id, alg_wide, "teacher"): ("active", "oneroster"),
        ("stu-3", biology.id, period2.id, "student"): ("active", "oneroster"),
    }
    assert outcome.added == 4
    # The person Caseload already knew is reused; the others are created with placeholder subs.
    people = {p.sis_id: p for p in db_session.scalars(select(Person).where(Person.platform_id == plat.id))}
    assert people["stu-1"].id == district["known"].id and people["stu-1"].lti_sub == "canvas-sub-avery"
    assert people["stu-2"].lti_sub == "oneroster:stu-2" and people["stu-2"].name == "Sage Whitcombe"
    assert people["tch-1"].kind == "staff"
    run = db_session.scalars(select(SyncRun)).one()
    assert (run.kind, run.status, run.course_id) == ("oneroster_full", "ok", None)
    assert run.cursor and run.cursor.endswith("Z")
    assert not any("filter=" in r for r in sis.requests)
    assert len(sis.requests_to("enrollments")) == 3  # 5 records, 2 a page


def test_delta_pull_applies_tombstones_new_enrollments_and_changed_names(db_session, sis, district):
    plat, algebra = district["platform"], district["algebra"]
    _pull(db_session, plat)
    sis.tombstone("enrollments", "e2")
    sis.user("stu-4", "Tamsin", "Oakes")
    sis.enroll("e6", "stu-4", "class-alg")
    sis.data["users"]["stu-3"].update(givenName="Julian", dateLastModified=sis.tick())
    before = len(sis.requests)

    outcome = _pull(db_session, plat)

    assert outcome.ok, outcome.error
    assert all("filter=dateLastModified" in r for r in sis.requests[before:] if "/users/" not in r)
    run = db_session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
    assert run.kind == "oneroster_delta"
    wide = roster.course_wide_section(db_session, algebra).id
    rows = _rows(db_session, plat)
    assert rows[("stu-2", algebra.id, wide, "student")] == ("deleted", "oneroster")
    assert rows[("stu-4", algebra.id, wide, "student")] == ("active", "oneroster")
    assert (outcome.added, outcome.removed) == (1, 1)
    julian = db_session.scalars(select(Person).where(Person.sis_id == "stu-3")).one()
    assert julian.given_name == "Julian"


def test_full_pull_ends_oneroster_enrollments_the_sis_dropped_but_not_other_sources(db_session, sis, district):
    plat, algebra = district["platform"], district["algebra"]
    _pull(db_session, plat)
    # A teacher added in the LMS only (launch), unknown to the SIS.
    coteacher = f.person(db_session, plat, name="Linden Hale", kind="staff", sis_id="lms-only")
    f.enroll(db_session, coteacher, algebra, role="teacher", source="launch")
    db_session.commit()
    sis.remove("enrollments", "e1")  # hard-deleted: no tombstone, a delta cannot see it

    delta = _pull(db_session, plat)
    assert delta.removed == 0
    full = _pull(db_session, plat, full=True)

    assert full.removed == 1
    wide = roster.course_wide_section(db_session, algebra).id
    rows = _rows(db_session, plat)
    assert rows[("stu-1", algebra.id, wide, "student")] == ("inactive", "oneroster")
    assert rows[("lms-only", algebra.id, wide, "teacher")] == ("active", "launch")


def test_enrollment_past_its_end_date_is_inactive(db_session, sis, district):
    plat, algebra = district["platform"], district["algebra"]
    sis.enroll("e7", "stu-3", "class-alg", endDate="2020-06-30")
    _pull(db_session, plat)
    wide = roster.course_wide_section(db_session, algebra).id
    assert ("stu-3", algebra.id, wide, "student") not in _rows(db_session, plat)  # never active: not created


def test_placeholder_person_is_adopted_when_the_lms_reports_the_same_sis_id(app, db_session, sis, district):
    plat, algebra = district["platform"], district["algebra"]
    _pull(db_session, plat)
    placeholder = db_session.scalars(select(Person).where(Person.sis_id == "stu-2")).one()
    jwks = make_tool_key(db_session)
    db_session.commit()
    with NrpsTestPlatform(plat.client_id, jwks) as lms:
        plat.auth_token_url = lms.token_url
        algebra.nrps_url = lms.nrps_url("ctx-alg")
        db_session.commit()
        lms.set_members("ctx-alg", [member("canvas-sub-sage", ["Learner"], name="Sage Whitcombe", sourcedid="stu-2"),
                                    member("canvas-sub-avery", ["Learner"], sourcedid="stu-1"),
                                    member("canvas-sub-rowan", ["Instructor"], sourcedid="tch-1")])
        outcome = reconcile.reconcile_course(db_session, algebra.id)
    assert outcome.ok, outcome.error
    db_session.expire_all()
    adopted = db_session.get(Person, placeholder.id)
    assert adopted.lti_sub == "canvas-sub-sage"
    assert db_session.scalars(select(Person).where(Person.sis_id == "stu-2")).one().id == placeholder.id
    assert outcome.added == 0  # everyone was already enrolled through OneRoster


def test_secret_is_stored_encrypted_and_a_wrong_secret_fails_readably(db_session, sis, district):
    plat = district["platform"]
    stored = json.dumps(db_session.get(Platform, plat.id).settings)
    assert sis.client_secret not in stored
    reconcile_oneroster.configure(db_session, plat, base_url=sis.base_url, token_url=sis.token_url,
                                  client_id=sis.client_id, client_secret="not-the-secret")
    outcome = _pull(db_session, plat)
    assert outcome.status == "failed" and "client ID or secret" in outcome.error
    assert _rows(db_session, plat) == {}


def test_configure_refuses_unusable_settings(db_session, district):
    plat = district["platform"]
    with pytest.raises(reconcile_oneroster.ConfigError, match="version"):
        reconcile_oneroster.configure(db_session, plat, base_url="https://sis.example.test", token_url="https://x",
                                      client_id="c", client_secret="s", version="1.0")
    with pytest.raises(reconcile_oneroster.ConfigError, match="http"):
        reconcile_oneroster.configure(db_session, plat, base_url="sis.example.test", token_url="https://x",
                                      client_id="c", client_secret="s")
