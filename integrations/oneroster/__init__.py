"""OneRoster 1.1/1.2 rostering client (OAuth2 client credentials, limit/offset paging, dateLastModified deltas)."""

from integrations.oneroster.client import (
    OneRosterClient,
    OneRosterConfig,
    OneRosterError,
    OrClass,
    OrEnrollment,
    OrUser,
    parse_class,
    parse_enrollment,
    parse_user,
)

__all__ = [
    "OneRosterClient", "OneRosterConfig", "OneRosterError", "OrClass", "OrEnrollment", "OrUser", "parse_class",
    "parse_enrollment", "parse_user",
]
