"""NRPS 2.0 member normalisation, Link parsing and paging rules (no network, no database)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.nrps import (  # noqa: E402
    NrpsClient,
    NrpsError,
    context_role,
    enrollment_roles,
    next_link,
    parse_member,
    with_query,
)
from tests.support.nrps_platform import FakeHttp, FakeResponse  # noqa: E402

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.mark.parametrize(("role", "expected"), [
    ("Learner", "student"),
    ("Instructor", "teacher"),
    ("Mentor", "observer"),
    ("ContentDeveloper", "designer"),
    ("Instructor#TeachingAssistant", "ta"),
    (LIS + "membership#Learner", "student"),
    (LIS + "membership#Instructor", "teacher"),
    (LIS + "membership/Instructor#TeachingAssistant", "ta"),
    (LIS + "membership/Learner#NonCreditLearner", "student"),
    (LIS + "membership#Mentor", "observer"),
    ("urn:lti:role:ims/lis/Instructor", "teacher"),
    ("urn:lti:role:ims/lis/TeachingAssistant", "ta"),
    ("urn:lti:role:ims/lis/Learner/NonCreditLearner", "student"),
    (LIS + "institution/person#Administrator", None),
    (LIS + "system/person#Administrator", None),
    ("urn:lti:instrole:ims/lis/Instructor", None),
    (LIS + "membership#Administrator", None),
    ("Member", None),
])
def test_context_roles_map_short_names_uris_and_urns(role, expected):
    assert context_role(role) == expected


def test_teaching_assistants_count_only_as_ta():
    roles = [LIS + "membership#Instructor", LIS + "membership/Instructor#TeachingAssistant"]
    assert enrollment_roles(roles) == {"ta"}
    assert enrollment_roles(["Instructor", "Learner"]) == {"teacher", "student"}


def test_member_defaults_and_empty_sourcedid():
    m = parse_member({"user_id": "4", "roles": ["Learner"], "lis_person_sourcedid": "", "name": "Stu1 Dent"})
    assert (m.user_id, m.status, m.roles, m.sourced_id, m.name, m.email) == ("4", "active", {"student"}, None,
                                                                               "Stu1 Dent", None)
    assert parse_member({"roles": ["Learner"]}) is None  # no user_id: cannot be matched
    assert parse_member({"user_id": "9", "status": "Inactive", "roles": []}).status == "inactive"


def test_canvas_user_id_is_read_from_message_or_custom_fields():
    claim = "https://www.instructure.com/canvas_user_id"
    custom = "https://purl.imsglobal.org/spec/lti/claim/custom"
    assert parse_member({"user_id": "u", "message": [{claim: 42}]}).lms_user_id == "42"
    assert parse_member({"user_id": "u", "message": [{custom: {"canvas_user_id": "77"}}]}).lms_user_id == "77"
    # An unsubstituted variable (the field was not configured) is not an id.
    assert parse_member({"user_id": "u", "message": [{custom: {"canvas_user_id": "$Canvas.user.id"}}]}).lms_user_id \
        is None
    assert parse_member({"user_id": "u"}).lms_user_id is None


@pytest.mark.parametrize(("header", "expected"), [
    ('<https://lms.test/m?page=2>; rel="next"', "https://lms.test/m?page=2"),
    ("<https://lms.test/m?page=2>; rel=next", "https://lms.test/m?page=2"),
    ('<https://lms.test/m?p=1>; rel="first", <https://lms.test/m?p=3>; rel="next", '
     '<https://lms.test/m?p=9>; rel="last"', "https://lms.test/m?p=3"),
    ('<https://lms.test/d?since=x>; rel="differences"', None),
    ("", None),
    (None, None),
])
def test_next_link_is_found_in_link_headers(header, expected):
    assert next_link(header) == expected


def test_with_query_replaces_and_keeps_parameters():
    assert with_query("https://lms.test/m?a=1&limit=5", limit=100, rlid=None) == "https://lms.test/m?a=1&limit=100"


def _page(members: list[dict[str, Any]], next_url: str | None = None) -> FakeResponse:
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return FakeResponse(200, json.dumps({"id": "x", "context": {"id": "c", "title": "Algebra I"},
                                         "members": members}), headers)


def _token(*, fresh: bool = False) -> str:
    return "fresh-token" if fresh else "cached-token"


def test_fetch_reads_every_page_and_merges_a_member_listed_twice():
    http = FakeHttp([
        _page([{"user_id": "1", "roles": ["Learner"]}, {"user_id": "2", "roles": ["Instructor"]}],
              "https://lms.test/m?page=2"),
        _page([{"user_id": "1", "roles": ["Mentor"]}, {"roles": ["Learner"]}]),
    ])
    roster = NrpsClient(http, _token, page_size=2).fetch("https://lms.test/m")
    assert roster.pages == 2 and roster.skipped == 1 and roster.context_title == "Algebra I"
    assert {m.user_id: m.roles for m in roster.members} == {"1": {"student", "observer"}, "2": {"teacher"}}
    assert http.calls[0][1] == "https://lms.test/m?limit=2"
    assert http.calls[0][2]["Accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    assert http.calls[0][2]["Authorization"] == "Bearer cached-token"


def test_a_next_link_to_another_site_is_not_followed():
    http = FakeHttp([_page([{"user_id": "1"}], "https://evil.test/steal")])
    with pytest.raises(NrpsError, match="another site"):
        NrpsClient(http, _token).fetch("https://lms.test/m")
    assert len(http.calls) == 1


def test_a_repeated_next_link_stops_the_read():
    http = FakeHttp([_page([], "https://lms.test/m?limit=100"), _page([], "https://lms.test/m?limit=100")])
    with pytest.raises(NrpsError, match="repeated"):
        NrpsClient(http, _token).fetch("https://lms.test/m")


def test_401_is_retried_once_with_a_fresh_token():
    http = FakeHttp([FakeResponse(401, '{"error": "invalid_token"}'), _page([{"user_id": "1"}])])
    roster = NrpsClient(http, _token).fetch("https://lms.test/m")
    assert len(roster.members) == 1
    assert [c[2]["Authorization"] for c in http.calls] == ["Bearer cached-token", "Bearer fresh-token"]


def test_refusals_become_readable_reasons():
    for status, words in ((403, "Names and Role Provisioning scope"), (404, "no longer knows"), (406, "2.0")):
        with pytest.raises(NrpsError, match=words) as info:
            NrpsClient(FakeHttp([FakeResponse(status, "{}")]), _token).fetch("https://lms.test/m")
        assert info.value.status == status


def test_a_page_nested_too_deep_to_parse_is_not_json():
    http = FakeHttp([FakeResponse(200, "[" * 50_000 + "]" * 50_000)])
    with pytest.raises(NrpsError, match="did not answer with JSON"):
        NrpsClient(http, _token).fetch("https://lms.test/m")
