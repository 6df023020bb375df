"""Evidence revisions without a database: what a revision holds, and that its encrypted columns are re-encrypted by
``caseload data rotate-keys`` like every other text written about a student."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import LargeBinary, inspect

from lti_app.models import EvidenceRevision, ProgressPoint, ServiceSession
from lti_app.services.platforms.data_keys import COLUMNS


def test_every_encrypted_column_of_evidence_revisions_is_rotated_with_the_data_keys():
    encrypted = {c.key for c in inspect(EvidenceRevision).columns if isinstance(c.type, LargeBinary)}
    rotated = {col for model, cols in COLUMNS if model is EvidenceRevision for col in cols}
    assert encrypted == rotated == {"state_encrypted", "reason_encrypted"}


def test_a_revision_state_is_plain_json_values_of_the_entry():
    from lti_app.services.casework import evidence

    point = ProgressPoint(id=1, goal_id=1, measured_on=dt.date(2026, 11, 2), value=Decimal("42.500"),
                          note_encrypted=None, revision_no=1)
    assert evidence.state_of(point) == {"measured_on": "2026-11-02", "value": "42.5", "note": ""}
    session = ServiceSession(id=2, requirement_id=1, student_id=1, held_on=dt.date(2026, 11, 3), minutes=30,
                             attendance="provider_absent", kind="make_up", note_encrypted=None)
    assert evidence.state_of(session) == {"held_on": "2026-11-03", "minutes": 30, "attendance": "provider_absent",
                                          "kind": "make_up", "note": ""}
    assert evidence.entity_of(session) == "service_session"
