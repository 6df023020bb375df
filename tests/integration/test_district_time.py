"""District time end to end (CASELOAD_TIMEZONE): a contact or note entered this evening in California, or this
morning in Guam, lands on the day the school lived it, and every time a page or the command line shows is the
district's. The clock is moved to the moment where the UTC date and the district's date differ."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from lti_app import clock
from lti_app.cli import main
from lti_app.models import AccessEvent, Contact
from lti_app.services.access import audit_log
from tests.support import casework_world
from tests.support.casework_world import Client, text_of

CALIFORNIA_8PM = dt.datetime(2026, 1, 15, 4, 0, tzinfo=dt.UTC)  # 20:00 PST on Wednesday 14 January
GUAM_7AM = dt.datetime(2026, 3, 9, 21, 0, tzinfo=dt.UTC)  # 07:00 ChST on Tuesday 10 March


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"timezone": getattr(request, "param", "America/Los_Angeles")}


def _date_inputs(html: str) -> dict[str, str]:
    return dict(re.findall(r'type="date" name="([a-z_]+)" value="([0-9-]*)"', html))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
@pytest.mark.parametrize("app_config", ["America/Los_Angeles"], indirect=True)
def test_contact_entered_at_8pm_in_california_lands_on_the_local_day(client, token_for, db_session, monkeypatch):
    monkeypatch.setattr(clock, "utc_now", lambda: CALIFORNIA_8PM)
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    form = _date_inputs(cm.get(f"{base}/contacts").get_data(as_text=True))
    assert form["contacted_on"] == "2026-01-14", "the form offers the UTC date, not the district's"
    resp = cm.post(f"{base}/contacts", {"contacted_on": form["contacted_on"], "method": "phone", "direction": "out",
                                        "contact_with": "guardian", "summary": "Evening call about reading support."})
    assert resp.status_code == 303
    assert db_session.scalars(select(Contact)).one().contacted_on == dt.date(2026, 1, 14)
    # The page shows the date in the one format for dates; the ISO form is left to the date inputs' values.
    listed = text_of(cm.get(f"{base}/contacts"))
    assert "Jan 14, 2026 · Phone" in listed and "2026-01-14" not in listed
    # A note written by the teacher in the panel at the same moment defaults to the same day.
    panel = client.get(f"/panels/student/{w['ava'].id}", query_string={"t": token_for(w["teacher"], w["course"])})
    assert 'name="recorded_on" required value="2026-01-14"' in panel.get_data(as_text=True)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
@pytest.mark.parametrize("app_config", ["Pacific/Guam"], indirect=True)
def test_default_dates_at_7am_in_guam_are_guams_date(client, token_for, db_session, monkeypatch):
    monkeypatch.setattr(clock, "utc_now", lambda: GUAM_7AM)
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    form = _date_inputs(cm.get(f"/casework/students/{w['ava'].id}/contacts").get_data(as_text=True))
    defaults = {name: value for name, value in form.items() if value}
    assert defaults and set(defaults.values()) == {"2026-03-10"}, defaults


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
@pytest.mark.parametrize("app_config", ["America/Los_Angeles"], indirect=True)
def test_who_viewed_shows_each_read_at_the_districts_time(client, token_for, db_session):
    w = casework_world.build(db_session)
    db_session.add(AccessEvent(actor_id=w["counselor"].id, student_id=w["ava"].id, action="view", allowed=True,
                               basis="counselor grant (school support staff)", context="workspace: timeline",
                               at=CALIFORNIA_8PM))
    db_session.commit()
    page = text_of(Client(client, token_for(w["cm"])).get(f"/casework/students/{w['ava'].id}/viewers"))
    assert "Jan 14, 2026, 8:00 PM PST" in page  # the one format for a moment: US English, district clock and zone
    assert "Jan 15, 2026" not in page and "4:00 AM" not in page


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
@pytest.mark.parametrize("app_config", ["America/Los_Angeles"], indirect=True)
def test_access_log_day_filter_uses_the_districts_days(app, db_session):
    w = casework_world.build(db_session)
    db_session.add(AccessEvent(actor_id=w["counselor"].id, student_id=w["ava"].id, action="view", allowed=True,
                               basis="counselor grant (school support staff)", context="workspace: timeline",
                               at=CALIFORNIA_8PM))
    db_session.commit()

    def on(day: dt.date) -> int:
        return audit_log.access_log(db_session, audit_log.AccessFilter(date_from=day, date_to=day)).total

    assert on(dt.date(2026, 1, 14)) == 1, "a read at 20:00 on 14 January in California is on 14 January"
    assert on(dt.date(2026, 1, 15)) == 0


@pytest.mark.parametrize("app_config", ["Pacific/Guam"], indirect=True)
def test_command_line_shows_times_in_the_districts_zone(runner):
    listed = runner.invoke(main, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d ChST", listed.output), listed.output
