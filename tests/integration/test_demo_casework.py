"""The demo district's casework: seeded once (idempotent), with shortfalls on the caseload home and one crisis entry."""

from __future__ import annotations

from sqlalchemy import func, select

from lti_app.demo.district import seed_demo
from lti_app.models import CrisisEntry, Person, Referral, ServiceRequirement, ServiceSession
from tests.support.casework_world import text_of


def test_demo_casework_is_seeded_once_and_shows_shortfalls(app, client, token_for, db_session):
    settings = app.config["CASELOAD"]
    seed_demo(db_session, settings)
    db_session.commit()
    counts = {m.__tablename__: db_session.scalar(select(func.count()).select_from(m))
              for m in (ServiceRequirement, ServiceSession, Referral, CrisisEntry)}
    seed_demo(db_session, settings)
    db_session.commit()
    again = {m.__tablename__: db_session.scalar(select(func.count()).select_from(m))
             for m in (ServiceRequirement, ServiceSession, Referral, CrisisEntry)}
    assert counts == again and counts["crisis_entries"] == 1 and counts["service_requirements"] >= 8
    manager = db_session.scalars(select(Person).where(Person.lti_sub == "demo-cm-1")).one()
    page = text_of(client.get("/casework/", query_string={"t": token_for(manager, None)}))
    assert " short · " in page and "on track" in page
