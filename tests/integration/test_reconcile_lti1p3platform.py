"""Caseload's token request and NRPS reconcile against ``lti1p3platform``, a platform implementation nobody on the
team wrote: its ``get_access_token`` verifies our client assertion against our JWKS and issues the access token,
its ``validate_token`` checks that token on the membership request (see ``Lti1p3PlatformServer`` for what the
package does and does not check)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_app.models import Enrollment, Person
from lti_app.services.roster import reconcile
from tests.support import factories as f
from tests.support.nrps_platform import Lti1p3PlatformServer, make_tool_key, member, public_pem_pair

pytest.importorskip("lti1p3platform")


@pytest.fixture
def library_platform(app, db_session):
    jwks = make_tool_key(db_session)
    db_session.commit()
    private_pem, public_pem = public_pem_pair()
    with Lti1p3PlatformServer("lib-client", jwks, private_pem, public_pem) as server:
        yield server


def test_lti1p3platform_issues_the_token_and_serves_the_paged_roster(db_session, library_platform):
    server = library_platform
    server.members = [member("t1", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]),
                      *[member(f"s{i}", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])
                        for i in range(250)]]
    plat = f.platform(db_session, lms="generic", client_id="lib-client", auth_token_url=server.token_url)
    course = f.course(db_session, plat, lti_context_id=server.context_id, nrps_url=server.nrps_url)
    db_session.commit()

    outcome = reconcile.reconcile_course(db_session, course.id)

    assert outcome.ok, outcome.error
    assert (outcome.added, outcome.members) == (251, 251)
    assert server.tokens_issued == 1
    assert server.nrps_requests == 3  # limit=100: the next-page links were followed
    roles = db_session.execute(select(Enrollment.role, Enrollment.state).where(Enrollment.course_id == course.id)).all()
    assert sorted({r for r, _ in roles}) == ["student", "teacher"] and {s for _, s in roles} == {"active"}
    assert db_session.scalar(select(Person.kind).where(Person.lti_sub == "t1")) == "staff"


def test_lti1p3platform_refuses_an_assertion_signed_with_another_key(db_session):
    # The platform trusts a JWKS that does not contain Caseload's current key.
    from lti_app.models import ToolKey

    foreign = make_tool_key(db_session, kid="foreign")
    db_session.execute(ToolKey.__table__.update().where(ToolKey.kid == "foreign").values(state="retired"))
    make_tool_key(db_session, kid="current-one")
    db_session.commit()
    private_pem, public_pem = public_pem_pair()
    with Lti1p3PlatformServer("lib-client", foreign, private_pem, public_pem) as server:
        server.members = [member("s1")]
        plat = f.platform(db_session, lms="generic", client_id="lib-client", auth_token_url=server.token_url)
        course = f.course(db_session, plat, lti_context_id=server.context_id, nrps_url=server.nrps_url)
        db_session.commit()
        outcome = reconcile.reconcile_course(db_session, course.id)
    assert outcome.status == "failed" and "client assertion" in outcome.error
    assert server.tokens_issued == 0
