"""OneRoster 1.1/1.2 record parsing, paging and delta filters (no network, no database)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.oneroster import (  # noqa: E402
    OneRosterClient,
    OneRosterConfig,
    OneRosterError,
    parse_enrollment,
    parse_user,
)
from integrations.oneroster.client import format_timestamp, parse_timestamp  # noqa: E402
from tests.support.nrps_platform import FakeHttp, FakeResponse  # noqa: E402

CONFIG = OneRosterConfig(base_url="https://sis.example.test", token_url="https://sis.example.test/oauth/token",
                         client_id="cid", client_secret="s3cret", page_size=2)


def test_user_roles_from_1_1_and_1_2_shapes():
    v11 = parse_user({"sourcedId": "u1", "status": "active", "role": "teacher", "givenName": "Rowan",
                      "familyName": "Ellery", "identifier": "T-1", "dateLastModified": "2026-09-01T08:00:00Z"})
    assert v11.is_staff and v11.name == "Rowan Ellery" and v11.identifier == "T-1"
    assert v11.date_last_modified == dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    v12 = parse_user({"sourcedId": "u2", "status": "tobedeleted", "enabledUser": "false",
                      "roles": [{"roleType": "primary", "role": "student", "org": {"sourcedId": "s"}}]})
    assert (v12.is_staff, v12.status, v12.enabled, v12.roles) == (False, "tobedeleted", False, {"student"})
    assert parse_user({"status": "active"}) is None


def test_enrollment_roles_dates_and_activity():
    e = parse_enrollment({"sourcedId": "e1", "status": "active", "role": "aide", "user": {"sourcedId": "u1"},
                          "class": {"sourcedId": "c1"}, "beginDate": "2026-08-20", "endDate": "2027-06-15"})
    assert (e.role, e.user_sourced_id, e.class_sourced_id) == ("ta", "u1", "c1")
    assert e.active_on(dt.date(2026, 9, 1)) and not e.active_on(dt.date(2027, 7, 1))
    assert not e.active_on(dt.date(2026, 8, 1))
    assert parse_enrollment({"sourcedId": "e2", "role": "guardian"}).role is None
    assert parse_enrollment({"sourcedId": "e3", "role": "student", "status": "tobedeleted"}).active_on(
        dt.date(2026, 9, 1)) is False


def test_timestamps_round_trip_in_the_filter_format():
    stamp = dt.datetime(2026, 11, 24, 8, 5, 9, 123456, tzinfo=dt.UTC)
    assert format_timestamp(stamp) == "2026-11-24T08:05:09.123Z"
    assert parse_timestamp("2026-11-24T08:05:09.123Z") == dt.datetime(2026, 11, 24, 8, 5, 9, 123000, tzinfo=dt.UTC)
    assert parse_timestamp("not a date") is None and parse_timestamp(None) is None


def test_service_root_per_version():
    assert CONFIG.service_root == "https://sis.example.test/ims/oneroster/rostering/v1p2"
    v11 = OneRosterConfig(base_url="https://sis.example.test/", token_url="t", client_id="c", client_secret="s",
                          version="1.1")
    assert v11.service_root == "https://sis.example.test/ims/oneroster/v1p1"
    assert v11.scope == "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly"
    explicit = OneRosterConfig(base_url="https://sis.test/api/ims/oneroster/rostering/v1p2", token_url="t",
                               client_id="c", client_secret="s")
    assert explicit.service_root == "https://sis.test/api/ims/oneroster/rostering/v1p2"


def _token():
    return FakeResponse(200, json.dumps({"access_token": "tok", "expires_in": 3600}))


def _page(records, total=None):
    return FakeResponse(200, json.dumps({"users": records}), {"X-Total-Count": str(total)} if total else {})


def test_paging_with_total_count_and_delta_filter():
    http = FakeHttp([_token(), _page([{"sourcedId": "a"}, {"sourcedId": "b"}], 3), _page([{"sourcedId": "c"}], 3)])
    client = OneRosterClient(http, CONFIG)
    since = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    users = list(client.users(since=since))
    assert [u.sourced_id for u in users] == ["a", "b", "c"]
    token_call, first, second = http.calls
    assert token_call[2]["Authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    assert token_call[3] == {"grant_type": "client_credentials",
                             "scope": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"}
    query = parse_qs(urlsplit(first[1]).query)
    assert query == {"limit": ["2"], "offset": ["0"], "filter": ["dateLastModified>'2026-09-01T08:00:00.000Z'"]}
    assert parse_qs(urlsplit(second[1]).query)["offset"] == ["2"]
    assert first[2]["Authorization"] == "Bearer tok"


def test_paging_without_total_count_stops_on_a_short_page():
    http = FakeHttp([_token(), _page([{"sourcedId": "a"}, {"sourcedId": "b"}]), _page([])])
    assert [u.sourced_id for u in OneRosterClient(http, CONFIG).users()] == ["a", "b"]
    assert len(http.calls) == 3


def test_wrong_credentials_and_missing_collection_are_explained():
    with pytest.raises(OneRosterError, match="client ID or secret"):
        list(OneRosterClient(FakeHttp([FakeResponse(401, "{}")]), CONFIG).users())
    http = FakeHttp([_token(), FakeResponse(200, json.dumps({"classes": []}))])
    with pytest.raises(OneRosterError, match="'users' list"):
        list(OneRosterClient(http, CONFIG).users())
