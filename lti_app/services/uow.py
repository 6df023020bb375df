"""A unit of work: a session whose exit rolls back unless the use case committed (cosmicpython)."""

from __future__ import annotations

from types import TracebackType

from flask import current_app
from sqlalchemy.orm import Session


class UnitOfWork:
    def __init__(self, session: Session | None = None) -> None:
        self._own = session is None
        self.session: Session = session or current_app.extensions["caseload.sessionmaker"]()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.session.rollback()
        if self._own:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
