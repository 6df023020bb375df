"""Senders of pushed roster events for tests and benchmarks.

- ``CanvasLiveEvents``: a Canvas Data Services stand-in. Its RSA key set is served over real HTTP on 127.0.0.1
  and each event is a JWT signed with it (Canvas's "Sign Payload"). Payloads follow the shapes in Canvas's
  Live Events documentation (metadata + body, global ids ``shard * 10**13 + local``).
- ``MoodlePlugin``: what the companion plugin (integrations/moodle/local_caseload) posts: JSON in the
  ``caseload.moodle-event/1`` format, signed with HMAC-SHA256 over ``timestamp + "." + body``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import jwt

from integrations.signed_payloads import hmac_signature
from tests.support.lti_platform import _JwksHandler, _loaded_key, new_rsa_key

SHARD = 2107 * 10**13
"""A Canvas shard prefix: global id = SHARD + local id."""


def gid(local: int | str) -> str:
    return str(SHARD + int(local))


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class CanvasLiveEvents:
    root_account_uuid: str = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
    keys: list[Any] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> CanvasLiveEvents:
        key, pem, jwk = new_rsa_key()
        self.keys = [(pem, jwk)]
        server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
        server.keys = [jwk]  # type: ignore[attr-defined]
        server.fetches = 0  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def keyset_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    @property
    def fetches(self) -> int:
        assert self._server is not None
        return int(self._server.fetches)  # type: ignore[attr-defined]

    def rotate(self) -> None:
        _, pem, jwk = new_rsa_key()
        self.keys.insert(0, (pem, jwk))
        assert self._server is not None
        self._server.keys = [k[1] for k in self.keys]  # type: ignore[attr-defined]

    # -- payloads -------------------------------------------------------------------------------------------------

    def event(self, name: str, body: dict[str, Any], when: dt.datetime | None = None,
              context_id: int | str | None = None) -> dict[str, Any]:
        when = when or dt.datetime.now(dt.UTC)
        metadata: dict[str, Any] = {
            "event_name": name, "event_time": iso(when), "producer": "canvas", "hostname": "district.instructure.test",
            "root_account_uuid": self.root_account_uuid, "root_account_id": gid(1),
            "request_id": str(uuid.uuid4()), "context_type": "Course",
        }
        if context_id is not None:
            metadata["context_id"] = gid(context_id)
        return {"metadata": metadata, "body": body}

    def enrollment(self, name: str, *, enrollment_id: int, course_id: int, user_id: int, section_id: int,
                   role: str = "StudentEnrollment", state: str = "active", when: dt.datetime | None = None,
                   user_name: str = "Learner Example") -> dict[str, Any]:
        stamp = iso(when or dt.datetime.now(dt.UTC))
        return self.event(name, {
            "enrollment_id": gid(enrollment_id), "course_id": gid(course_id), "user_id": gid(user_id),
            "user_name": user_name, "type": role, "created_at": stamp, "updated_at": stamp,
            "limit_privileges_to_course_section": False, "course_section_id": gid(section_id),
            "associated_user_id": None, "workflow_state": state,
        }, when, context_id=course_id)

    def sign(self, payload: dict[str, Any], *, kid: str | None = None, alg: str = "RS256",
             key_pem: str | None = None, headers: dict[str, Any] | None = None) -> str:
        pem, jwk = self.keys[0]
        key = (key_pem or pem) if not alg.startswith("RS") else _loaded_key(key_pem or pem)
        return jwt.encode(payload, key, algorithm=alg,
                          headers={"kid": kid or jwk["kid"], **(headers or {})})


@dataclass
class MoodlePlugin:
    secret: str

    def event(self, name: str, *, course_id: int | None = None, user_id: int | None = None,
              roles: list[str] | None = None, status: str = "active", role: str | None = None,
              when: dt.datetime | None = None, uid: str | None = None,
              user: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "schema": "caseload.moodle-event/1", "event_uid": uid or str(uuid.uuid4()),
            "event_name": f"\\core\\event\\{name}", "event_time": iso(when or dt.datetime.now(dt.UTC)),
            "site": "https://moodle.district.test",
        }
        if course_id is not None:
            payload["course"] = {"id": str(course_id), "shortname": f"C{course_id}", "fullname": f"Course {course_id}"}
        if user_id is not None:
            payload["user"] = {"id": str(user_id), "firstname": "Rowan", "lastname": f"Example{user_id}",
                               "email": f"user{user_id}@example.org", "idnumber": f"S-{user_id}", **(user or {})}
        if name in ("user_enrolment_created", "user_enrolment_updated", "user_enrolment_deleted", "role_assigned",
                    "role_unassigned"):
            payload["enrolment"] = {"status": status, "roles": roles or []}
        if role is not None:
            payload["role"] = {"shortname": role, "archetype": role}
        return payload

    def post(self, client: Any, platform: str, payload: dict[str, Any] | bytes, *, timestamp: int | None = None,
             secret: str | None = None, signature: str | None = None) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature if signature is not None else hmac_signature(secret or self.secret, ts, body)
        return client.post(f"/webhooks/moodle/{platform}", data=body, content_type="application/json",
                           headers={"X-Caseload-Timestamp": ts, "X-Caseload-Signature": sig})
