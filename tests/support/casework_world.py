"""A small fictional caseload for the casework tests: Juniper Ridge, case manager Tamsin Larkspur (restricted
access) with Ava Quinlan (IEP) on her caseload; Perrin Galloway, case manager of Ben Hollis; counselor Wren
Ashgrove (no restricted access); speech-language provider Oriel Brightwater; Rowan Ellery teaches Ava in Algebra I;
Ava herself (student person); Marlo Vance, LMS administrator."""

from __future__ import annotations

import html
import re
from typing import Any

from lti_app.models import Plan, PlanVersion, RoleGrant, Student, StudentLink
from tests.support import factories as f


def build(s: Any, cm_restricted: bool = True) -> dict[str, Any]:
    plat = f.platform(s, name="juniper-moodle")
    alg = f.course(s, plat, "Algebra I")
    w: dict[str, Any] = {"platform": plat, "course": alg}
    for key, name in [("cm", "Tamsin Larkspur"), ("other_cm", "Perrin Galloway"), ("counselor", "Wren Ashgrove"),
                      ("provider", "Oriel Brightwater"), ("teacher", "Rowan Ellery"), ("admin", "Marlo Vance")]:
        w[key] = f.person(s, plat, name, kind="staff")
    w["ava_person"] = f.person(s, plat, "Ava Quinlan", sis_id="S-1")
    s.add_all([RoleGrant(person_id=w["cm"].id, role="case_manager", can_see_restricted=cm_restricted),
               RoleGrant(person_id=w["other_cm"].id, role="case_manager"),
               RoleGrant(person_id=w["counselor"].id, role="counselor"),
               RoleGrant(person_id=w["provider"].id, role="provider")])
    f.enroll(s, w["teacher"], alg, "teacher")
    f.enroll(s, w["ava_person"], alg, "student")
    ava = Student(sis_id="S-1", given_name="Ava", family_name="Quinlan", grade="10")
    ben = Student(sis_id="S-2", given_name="Ben", family_name="Hollis", grade="9")
    s.add_all([ava, ben])
    s.flush()
    s.add(StudentLink(student_id=ava.id, person_id=w["ava_person"].id))
    for st, manager in ((ava, w["cm"]), (ben, w["other_cm"])):
        plan = Plan(student_id=st.id, plan_type="IEP", status="active", case_manager_id=manager.id)
        s.add(plan)
        s.flush()
        s.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
        w[f"plan_{st.given_name.lower()}"] = plan
    w["ava"], w["ben"] = ava, ben
    s.commit()
    return w


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no form on the page"
    return match.group(1)


class Client:
    """Requests as one person: get/post with their app token and a CSRF token from a page they opened."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token, self._csrf = client, token, ""

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(path, query_string={"t": self.token, **params})
        if resp.status_code == 200 and 'name="csrf_token"' in resp.get_data(as_text=True):
            self._csrf = csrf_of(resp.get_data(as_text=True))
        return resp

    def post(self, path: str, data: dict[str, Any], csrf: bool = True) -> Any:
        if csrf and not self._csrf:
            from flask import g

            from lti_app.auth import csrf_token, read_token

            with self.client.application.test_request_context():
                g.viewer = read_token(self.token)
                self._csrf = csrf_token()
        body = {"t": self.token, **data}
        if csrf:
            body["csrf_token"] = self._csrf
        return self.client.post(path, data=body)


def text_of(resp: Any) -> str:
    """The page's text, tags removed and entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())
