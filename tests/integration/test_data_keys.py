"""Data-key rotation: after `caseload data rotate-keys` the old key can be dropped and everything still reads."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from lti_app import clock
from lti_app.cli import main
from lti_app.crypto import DataCipher
from lti_app.models import CaseNote
from tests.conftest import TEST_DATA_KEY
from tests.support import factories as f


def test_rotate_keys_reencrypts_with_the_newest_key(app, db_session):
    from lti_app.crypto import cipher
    from lti_app.models import Student

    plat = f.platform(db_session)
    author = f.person(db_session, plat, "Rowan Ellery", kind="staff")
    student = Student(given_name="Ava", family_name="Quinlan")
    db_session.add(student)
    db_session.flush()
    db_session.add(CaseNote(student_id=student.id, author_id=author.id, note_type="other", recorded_on=clock.today(),
                            visibility="team", body_encrypted=cipher().encrypt("old-key text")))
    db_session.commit()
    new_key = Fernet.generate_key().decode()
    app.extensions["caseload.cipher"] = DataCipher([new_key, TEST_DATA_KEY])
    result = app.test_cli_runner().invoke(main, ["data", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "case_notes: 1 re-encrypted" in result.output
    db_session.expire_all()
    raw = bytes(db_session.scalars(select(CaseNote)).one().body_encrypted)
    assert DataCipher([new_key]).decrypt(raw) == "old-key text"
    try:
        Fernet(TEST_DATA_KEY.encode()).decrypt(raw)
        raise AssertionError("still readable with the old key")
    except InvalidToken:
        pass
