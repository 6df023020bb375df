"""Canvas facts shared by the developer-key JSON, the launch parser and the Live Events handler."""

from __future__ import annotations

# Custom parameters Caseload asks Canvas to substitute in every launch (Canvas variable substitutions).
# The keys are what arrives in the LTI custom claim; the values are Canvas variables.
CANVAS_CUSTOM_FIELDS: dict[str, str] = {
    "canvas_course_id": "$Canvas.course.id",
    "canvas_user_id": "$Canvas.user.id",
    "canvas_root_account_uuid": "$vnd.Canvas.root_account.uuid",
    "canvas_section_ids": "$Canvas.course.sectionIds",
    "canvas_user_sis_id": "$Canvas.user.sisSourceId",
    "canvas_course_sis_id": "$Canvas.course.sisSourceId",
    "canvas_section_sis_ids": "$Canvas.course.sectionSisSourceIds",
    # Student Context Card: the student whose card is open (Canvas substitutes it only in that placement).
    "canvas_student_id": "$com.instructure.Person.student_id",
    "placement": "$com.instructure.Placement",
}

# Canvas global ids: shard * 10**13 + local id (Canvas "global id" convention).
SHARD_FACTOR = 10**13


def local_id(global_or_local: str | int) -> str:
    """Normalise a Canvas id (global ``shard*10**13+local`` or local) to the local id as a string."""
    value = int(str(global_or_local).strip())
    return str(value % SHARD_FACTOR) if value >= SHARD_FACTOR else str(value)
