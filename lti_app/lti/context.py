"""``LaunchContext``: one typed object for a validated launch, so views never read raw claim dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lti_app.domain.canvas import CANVAS_CUSTOM_FIELDS
from lti_app.lti.roles import map_roles

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"


@dataclass(frozen=True)
class LaunchContext:
    platform_id: int
    deployment_id: str
    sub: str
    roles: tuple[str, ...]
    role_uris: tuple[str, ...]
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str | None = None
    person_sourcedid: str | None = None
    context_id: str | None = None
    context_title: str = ""
    context_label: str = ""
    nrps_url: str | None = None
    resource_link_id: str | None = None
    placement: str = "course_navigation"
    custom: dict[str, str] = field(default_factory=dict)
    lms_family: str = "generic"
    return_url: str | None = None
    """``launch_presentation.return_url`` (LTI Core 1.3 §5.4.4): a page of the LMS, so its origin is one the LMS's
    pages live on (framing, services.platforms.framing)."""

    @property
    def canvas_user_id(self) -> str | None:
        return _substituted(self.custom.get("canvas_user_id"))

    @property
    def canvas_course_id(self) -> str | None:
        return _substituted(self.custom.get("canvas_course_id"))

    @property
    def canvas_section_ids(self) -> list[str]:
        raw = _substituted(self.custom.get("canvas_section_ids"))
        return [s.strip() for s in raw.split(",") if s.strip()] if raw else []

    @property
    def user_sis_id(self) -> str | None:
        return _substituted(self.custom.get("canvas_user_sis_id")) or (self.person_sourcedid or None)

    @property
    def course_sis_id(self) -> str | None:
        return _substituted(self.custom.get("canvas_course_sis_id"))

    @property
    def canvas_api_domain(self) -> str | None:
        """Canvas ``$Canvas.api.domain``: the host the user is on (the district's, not the issuer's)."""
        return _substituted(self.custom.get("canvas_api_domain"))

    @property
    def student_lms_user_id(self) -> str | None:
        """Canvas Student Context Card: the student the card is about."""
        return _substituted(self.custom.get("canvas_student_id"))

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def _substituted(value: Any) -> str | None:
    """A custom value, or None when the platform left the ``$Variable`` unsubstituted or empty."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.startswith("$"):
        return None
    return text


def _placement(claims: dict[str, Any], custom: dict[str, str]) -> str:
    if custom.get("placement"):
        return custom["placement"]
    if custom.get("canvas_student_id") and _substituted(custom.get("canvas_student_id")):
        return "student_context_card"
    return "course_navigation" if claims.get(CLAIM + "context") else "account_navigation"


def from_claims(claims: dict[str, Any], platform_id: int, lms_family: str = "generic") -> LaunchContext:
    """Build the context from validated claims (LTI Core 1.3 §5.3 required, §5.4 optional claims)."""
    context = claims.get(CLAIM + "context") or {}
    resource_link = claims.get(CLAIM + "resource_link") or {}
    lis = claims.get(CLAIM + "lis") or {}
    custom_raw = claims.get(CLAIM + "custom") or {}
    custom = {str(k): str(v) for k, v in custom_raw.items()} if isinstance(custom_raw, dict) else {}
    nrps = claims.get(NRPS_CLAIM) or {}
    presentation = claims.get(CLAIM + "launch_presentation") or {}
    return_url = presentation.get("return_url") if isinstance(presentation, dict) else None
    role_uris = tuple(str(r) for r in claims.get(CLAIM + "roles") or ())
    return LaunchContext(
        platform_id=platform_id,
        deployment_id=str(claims.get(CLAIM + "deployment_id", "")),
        sub=str(claims.get("sub", "")),
        roles=map_roles(role_uris),
        role_uris=role_uris,
        name=str(claims.get("name") or ""),
        given_name=str(claims.get("given_name") or ""),
        family_name=str(claims.get("family_name") or ""),
        email=claims.get("email") or None,
        person_sourcedid=str(lis.get("person_sourcedid") or "") or None,
        context_id=str(context["id"]) if context.get("id") is not None else None,
        context_title=str(context.get("title") or ""),
        context_label=str(context.get("label") or ""),
        nrps_url=nrps.get("context_memberships_url") or None,
        resource_link_id=str(resource_link.get("id")) if resource_link.get("id") is not None else None,
        placement=_placement(claims, custom),
        custom=custom,
        lms_family=lms_family,
        return_url=return_url if isinstance(return_url, str) else None,
    )


__all__ = ["CANVAS_CUSTOM_FIELDS", "LaunchContext", "RESOURCE_LINK_REQUEST", "from_claims"]
