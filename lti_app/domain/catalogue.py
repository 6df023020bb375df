"""The accommodation catalogue: common accommodations with stable codes and operational, teacher-facing wording.

A case manager picks from here (or writes free text). The code is the accommodation's identity across plan
versions and imports (``accommodation_code`` in the import file), so rewording an entry here never makes an
existing plan look changed. Wording says what the teacher does, when, and its limits; the LMS parameters
(``time_multiplier``, ``extra_attempts``) are what a quiz-settings integration would apply.

Codes are never reused or renamed: add a new code instead. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lti_app.domain.vocab import AccommodationCategory, AppliesTo

PRESENTATION = AccommodationCategory.PRESENTATION.value
RESPONSE = AccommodationCategory.RESPONSE.value
SETTING = AccommodationCategory.SETTING.value
TIMING = AccommodationCategory.TIMING.value
ALL = AppliesTo.ALL.value
TESTS = AppliesTo.TESTS.value
CLASSROOM = AppliesTo.CLASSROOM.value

CATEGORY_LABELS = {PRESENTATION: "Presentation", RESPONSE: "Response", SETTING: "Setting",
                   TIMING: "Timing and scheduling"}
APPLIES_TO_LABELS = {ALL: "Classroom and tests", CLASSROOM: "Classroom only", TESTS: "Tests and quizzes only"}


@dataclass(frozen=True)
class CatalogueEntry:
    code: str
    category: str
    """``AccommodationCategory`` value."""
    name: str
    """Short name for the picker ("Extended time 1.5x")."""
    text: str
    """Operational wording shown to teachers (the accommodation's text when added)."""
    applies_to: str = ALL
    time_multiplier: Decimal | None = None
    extra_attempts: int | None = None


CATALOGUE: tuple[CatalogueEntry, ...] = (
    # Timing and scheduling
    CatalogueEntry("T-EXT-150", TIMING, "Extended time 1.5x",
                   "Tests and quizzes: time and a half (1.5x the standard time)", TESTS, Decimal("1.50")),
    CatalogueEntry("T-EXT-200", TIMING, "Extended time 2x",
                   "Tests and quizzes: double time (2x the standard time)", TESTS, Decimal("2.00")),
    CatalogueEntry("T-BREAKS", TIMING, "Breaks",
                   "A short break (up to 5 minutes) when requested, up to twice per class or test session", ALL),
    CatalogueEntry("T-CHUNK", TIMING, "Chunked assignments",
                   "Long assignments broken into smaller parts with a check-in and due date for each part", CLASSROOM),
    CatalogueEntry("T-DEADLINE", TIMING, "Flexible deadlines",
                   "Assignments may be handed in up to 2 school days late without penalty, on request", CLASSROOM),
    CatalogueEntry("T-ATTEMPT", TIMING, "Extra quiz attempt",
                   "One extra attempt on online quizzes", TESTS, None, 1),
    # Setting
    CatalogueEntry("S-SEPARATE", SETTING, "Separate setting",
                   "Tests in a separate, quiet room with a proctor", TESTS),
    CatalogueEntry("S-SMALL-GROUP", SETTING, "Small-group testing",
                   "Tests in a small group (no more than 8 students)", TESTS),
    CatalogueEntry("S-SEATING", SETTING, "Preferential seating",
                   "Seat near the teacher and the board, away from doors, windows and other distractions", CLASSROOM),
    CatalogueEntry("S-HEADPHONES", SETTING, "Noise-reducing headphones",
                   "May wear noise-reducing headphones (no audio) during independent work and tests", ALL),
    CatalogueEntry("S-QUIET-SPACE", SETTING, "Quiet space",
                   "May go to an agreed quiet space when overwhelmed; check in privately afterwards", CLASSROOM),
    # Presentation
    CatalogueEntry("P-READ-HUMAN", PRESENTATION, "Read-aloud (human reader)",
                   "Test questions and directions read aloud by an adult on request "
                   "(not reading-comprehension passages)", TESTS),
    CatalogueEntry("P-READ-TTS", PRESENTATION, "Read-aloud (text-to-speech)",
                   "May use text-to-speech for directions, questions and readings "
                   "(not reading-comprehension passages on tests)", ALL),
    CatalogueEntry("P-NOTES", PRESENTATION, "Copy of class notes",
                   "A copy of class notes or slides, given before or at the start of the lesson", CLASSROOM),
    CatalogueEntry("P-LARGE-PRINT", PRESENTATION, "Large print",
                   "Large-print (18 pt) copies of handouts, tests and quizzes", ALL),
    CatalogueEntry("P-DIRECTIONS", PRESENTATION, "Directions oral and written",
                   "Directions given both orally and in writing; key steps numbered", ALL),
    CatalogueEntry("P-CHECK", PRESENTATION, "Check for understanding",
                   "Check privately that directions were understood before independent work starts", CLASSROOM),
    # Response
    CatalogueEntry("R-CALC", RESPONSE, "Calculator",
                   "May use a basic calculator, except on items that test computation itself", ALL),
    CatalogueEntry("R-REDUCED-CHOICES", RESPONSE, "Reduced answer choices",
                   "Multiple-choice items with 3 answer choices instead of 4", TESTS),
    CatalogueEntry("R-ORAL", RESPONSE, "Oral responses",
                   "May answer orally instead of in writing; the teacher records the answer", ALL),
    CatalogueEntry("R-SCRIBE", RESPONSE, "Scribe",
                   "An adult writes down the student's dictated answers word for word", TESTS),
    CatalogueEntry("R-SPEECH-TEXT", RESPONSE, "Speech-to-text",
                   "May use speech-to-text software for written work", ALL),
    CatalogueEntry("R-ORGANIZER", RESPONSE, "Graphic organiser",
                   "May use a graphic organiser or outline template for extended writing", ALL),
)

BY_CODE: dict[str, CatalogueEntry] = {e.code: e for e in CATALOGUE}


def entry(code: str | None) -> CatalogueEntry | None:
    """The catalogue entry for a code (case-insensitive), or None for free text and unknown codes."""
    if not code:
        return None
    return BY_CODE.get(code.strip().upper())


def grouped() -> list[tuple[str, list[CatalogueEntry]]]:
    """Entries by category, in the category order teachers see."""
    return [(CATEGORY_LABELS[c], [e for e in CATALOGUE if e.category == c]) for c in CATEGORY_LABELS]
