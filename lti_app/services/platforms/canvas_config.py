"""The Canvas developer-key JSON ("LTI 1.3 key, Paste JSON / Enter URL") built from CASELOAD_BASE_URL."""

from __future__ import annotations

from typing import Any

from lti_app.domain.canvas import CANVAS_CUSTOM_FIELDS

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
FRAMING_CUSTOM_FIELDS: dict[str, str] = {"canvas_api_domain": "$Canvas.api.domain"}
"""The host the Canvas user is on (the district's ``*.instructure.com`` or vanity domain), never the issuer: the
launch learns from it which origin frames Caseload (services.platforms.framing)."""


def custom_fields() -> dict[str, str]:
    """The custom fields Caseload asks Canvas to substitute (developer key and Dynamic Registration alike)."""
    return {**CANVAS_CUSTOM_FIELDS, **FRAMING_CUSTOM_FIELDS}


def developer_key(base_url: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    domain = base.split("://", 1)[-1].split("/", 1)[0]
    launch = base + "/lti/launch"

    def placement(name: str, text: str, **extra: Any) -> dict[str, Any]:
        return {"placement": name, "message_type": "LtiResourceLinkRequest", "target_link_uri": launch,
                "text": text, **extra}

    return {
        "title": "Caseload",
        "description": "Student accommodations, acknowledgements and case notes for teachers and case managers.",
        "oidc_initiation_url": base + "/lti/login",
        "target_link_uri": launch,
        "public_jwk_url": base + "/lti/jwks",
        "scopes": [NRPS_SCOPE],
        "custom_fields": custom_fields(),
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": domain,
            "privacy_level": "public",
            "settings": {
                "placements": [
                    # Course navigation: "admins" shows the link to users who can manage the course (teachers,
                    # TAs, designers, admins) and hides it from students and observers.
                    placement("course_navigation", "Accommodations", visibility="admins", default="enabled"),
                    placement("account_navigation", "Caseload"),
                    placement("student_context_card", "Accommodations"),
                ],
            },
        }],
    }
