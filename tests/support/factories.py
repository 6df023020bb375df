"""Small builders for test data (fictional people only). Each adds to the session and flushes."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy.orm import Session

from lti_app.models import Course, Deployment, Enrollment, Person, Platform, Section

_seq = itertools.count(1)


def platform(s: Session, name: str | None = None, lms: str = "moodle", **kw: Any) -> Platform:
    n = next(_seq)
    p = Platform(
        name=name or f"platform{n}", lms=lms, issuer=kw.pop("issuer", f"https://lms{n}.example.test"),
        client_id=kw.pop("client_id", f"client-{n}"),
        auth_login_url=kw.pop("auth_login_url", f"https://lms{n}.example.test/auth"),
        auth_token_url=kw.pop("auth_token_url", f"https://lms{n}.example.test/token"),
        keyset_url=kw.pop("keyset_url", f"https://lms{n}.example.test/jwks"), status="active", settings={}, **kw,
    )
    s.add(p)
    s.flush()
    return p


def deployment(s: Session, plat: Platform, deployment_id: str = "1", status: str = "active") -> Deployment:
    d = Deployment(platform_id=plat.id, deployment_id=deployment_id, status=status)
    s.add(d)
    s.flush()
    return d


def person(s: Session, plat: Platform, name: str | None = None, kind: str = "student", **kw: Any) -> Person:
    n = next(_seq)
    name = name or f"Person{n} Test"
    given, _, family = name.partition(" ")
    p = Person(platform_id=plat.id, lti_sub=kw.pop("lti_sub", f"sub-{n}"), name=name, given_name=given,
               family_name=family, kind=kind, **kw)
    s.add(p)
    s.flush()
    return p


def course(s: Session, plat: Platform, title: str = "Course", **kw: Any) -> Course:
    n = next(_seq)
    c = Course(platform_id=plat.id, lti_context_id=kw.pop("lti_context_id", f"ctx-{n}"), title=title, **kw)
    s.add(c)
    s.flush()
    s.add(Section(course_id=c.id, lms_section_id="", name=title))
    s.flush()
    return c


def section(s: Session, c: Course, lms_section_id: str = "", name: str = "") -> Section:
    existing = s.query(Section).filter_by(course_id=c.id, lms_section_id=lms_section_id).one_or_none()
    if existing:
        return existing
    sec = Section(course_id=c.id, lms_section_id=lms_section_id, name=name or lms_section_id)
    s.add(sec)
    s.flush()
    return sec


def enroll(s: Session, p: Person, c: Course, role: str = "student", sec: Section | None = None,
           state: str = "active", source: str = "launch", when: dt.datetime | None = None) -> Enrollment:
    sec = sec or section(s, c, "")
    e = Enrollment(person_id=p.id, course_id=c.id, section_id=sec.id, role=role, state=state, source=source,
                   source_time=when or dt.datetime.now(dt.UTC))
    s.add(e)
    s.flush()
    return e
