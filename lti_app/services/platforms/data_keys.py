"""Re-encrypt everything encrypted at rest with the newest data key (MultiFernet.rotate), so an old key can
later be removed from ``CASELOAD_DATA_KEYS``. Works in batches; each batch commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import cipher
from lti_app.models import (
    CaseNote,
    CaseNoteRevision,
    Contact,
    CrisisEntry,
    EvidenceRevision,
    LmsConnection,
    Meeting,
    NoteDraft,
    Platform,
    ProgressPoint,
    ProgressReport,
    ProgressReportGoal,
    Question,
    Referral,
    ReferralStatusChange,
    ServiceSession,
    ToolKey,
)

BATCH = 500
# (model, encrypted LargeBinary columns)
COLUMNS: list[tuple[type, tuple[str, ...]]] = [
    (CaseNote, ("body_encrypted",)),
    (CaseNoteRevision, ("body_encrypted",)),
    (NoteDraft, ("body_encrypted",)),
    (Question, ("body_encrypted", "answer_encrypted")),
    (ToolKey, ("private_key_encrypted",)),
    (Platform, ("webhook_secret_encrypted",)),
    (ServiceSession, ("note_encrypted",)),
    (Contact, ("summary_encrypted",)),
    (Meeting, ("participants_encrypted", "outcome_encrypted")),
    (Referral, ("reason_encrypted",)),
    (ReferralStatusChange, ("note_encrypted",)),
    (CrisisEntry, ("description_encrypted", "actions_encrypted")),
    (ProgressPoint, ("note_encrypted",)),
    (ProgressReport, ("narrative_encrypted",)),
    (ProgressReportGoal, ("comment_encrypted",)),
    (EvidenceRevision, ("state_encrypted", "reason_encrypted")),
    (LmsConnection, ("client_secret_encrypted", "secret_encrypted", "access_token_encrypted")),
]


def _rotate_settings(platform: Platform) -> bool:
    """Secrets kept as text tokens inside ``Platform.settings`` (practice key, OneRoster client secret)."""
    settings = dict(platform.settings or {})
    changed = False
    if isinstance(settings.get("practice_key"), str):
        settings["practice_key"] = cipher().rotate(settings["practice_key"].encode()).decode()
        changed = True
    oneroster = settings.get("oneroster")
    if isinstance(oneroster, dict) and isinstance(oneroster.get("client_secret_encrypted"), str):
        settings["oneroster"] = {**oneroster, "client_secret_encrypted":
                                 cipher().rotate(oneroster["client_secret_encrypted"].encode()).decode()}
        changed = True
    if changed:
        platform.settings = settings
    return changed


def rotate_all(session: Session, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model, columns in COLUMNS:
        done = 0
        last_id = 0
        pk = model.id  # type: ignore[attr-defined]
        while True:
            rows: list[Any] = list(session.scalars(select(model).where(pk > last_id).order_by(pk).limit(BATCH)))
            if not rows:
                break
            for row in rows:
                for column in columns:
                    value = getattr(row, column)
                    if value is not None:
                        setattr(row, column, cipher().rotate(bytes(value)))
                if isinstance(row, Platform):
                    _rotate_settings(row)
                done += 1
            last_id = rows[-1].id
            session.commit()
        counts[model.__tablename__] = done  # type: ignore[attr-defined]
        if progress:
            progress(model.__tablename__, done)  # type: ignore[attr-defined]
    return counts
