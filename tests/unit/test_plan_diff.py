"""What changed between two plan versions; the catalogue; the plan and accommodation rules (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lti_app.domain import catalogue, plan_rules
from lti_app.domain.access import Action, ActorFacts, StudentFacts, decide, decide_plan
from lti_app.domain.plan_diff import Item, diff
from lti_app.domain.vocab import AccommodationCategory, AppliesTo

EXT = Item("timing", "Tests and quizzes: time and a half", "tests", (), Decimal("1.5"), None, "T-EXT-150")
SEAT = Item("setting", "Seat near the front", "classroom")
CALC = Item("response", "Calculator allowed", "all")


def test_identical_versions_in_another_order_have_no_changes():
    assert diff([EXT, SEAT, CALC], [CALC, EXT, SEAT]).empty


def test_added_and_removed_by_identity():
    d = diff([EXT, SEAT], [EXT, CALC])
    assert d.added == (CALC,) and d.removed == (SEAT,) and d.changed == ()
    assert d.lines() == ["Added: Calculator allowed", "Removed: Seat near the front"]


def test_catalogue_code_is_the_identity_so_new_parameters_are_a_change():
    doubled = Item("timing", "Tests and quizzes: double time", "tests", (), Decimal("2.00"), None, "t-ext-150")
    d = diff([EXT], [doubled])
    assert not d.added and not d.removed and len(d.changed) == 1
    fields = {f.field: (f.before, f.after) for f in d.changed[0].fields}
    assert fields == {"text": ("Tests and quizzes: time and a half", "Tests and quizzes: double time"),
                      "time_multiplier": ("1.5x", "2x")}
    assert d.lines() == ["Changed: Tests and quizzes: double time (time multiplier: 1.5x → 2x)"]


def test_free_text_identity_ignores_case_and_spacing_but_scope_changes_count():
    d = diff([SEAT], [Item("setting", "  seat near   the FRONT ", "all")])
    assert len(d.changed) == 1
    assert [f.field for f in d.changed[0].fields] == ["text", "applies_to"]
    assert "applies to: classroom only → classroom and tests" in d.lines()[0]


def test_whitespace_only_rewording_is_not_a_change_and_decimal_scale_is_ignored():
    same = Item("timing", "Tests and quizzes:  time and a half", "tests", (), Decimal("1.50"), None, "T-EXT-150")
    assert diff([EXT], [same]).empty


def test_free_text_rewording_is_one_change_not_a_removal_and_an_addition():
    # Issue #13: an edited accommodation shows as changed. (It used to read as "Added" + "Removed".)
    d = diff([SEAT], [Item("setting", "Seat at the front, by the board", "classroom")])
    assert not d.added and not d.removed and len(d.changed) == 1
    assert d.lines() == ["Reworded: Seat near the front → Seat at the front, by the board"]


def test_unrelated_or_other_category_free_text_stays_an_addition_and_a_removal():
    assert len(diff([SEAT], [Item("setting", "Quiet room for tests", "classroom")]).added) == 1
    d = diff([SEAT], [Item("presentation", "Seat near the front row", "classroom")])
    assert len(d.added) == 1 and len(d.removed) == 1 and not d.changed


def test_rewordings_pair_the_most_alike_first():
    notes = Item("presentation", "Copy of notes", "all")
    d = diff([SEAT, notes], [Item("presentation", "Copy of class notes", "all"),
                             Item("setting", "Seat at the front, by the board", "classroom")])
    assert not d.added and not d.removed
    assert {(c.before.text, c.after.text) for c in d.changed} == {
        ("Copy of notes", "Copy of class notes"), ("Seat near the front", "Seat at the front, by the board")}


def test_subjects_compare_as_sets():
    a = Item("response", "Calculator allowed", "all", ("Mathematics", "Science"))
    b = Item("response", "Calculator allowed", "all", ("science", "Mathematics"))
    assert diff([a], [b]).empty
    c = Item("response", "Calculator allowed", "all", ("Mathematics",))
    assert [f.field for f in diff([a], [c]).changed[0].fields] == ["subjects"]


def test_duplicates_pair_exact_matches_first():
    changed = Item("setting", "Seat near the front", "all")
    d = diff([SEAT, SEAT], [SEAT, changed])
    assert len(d.changed) == 1 and d.changed[0].after == changed and not d.added and not d.removed
    assert diff([SEAT], [SEAT, SEAT]).added == (SEAT,)


def test_from_nothing_everything_is_added():
    assert diff([], [EXT, SEAT]).count == 2


def test_item_of_reads_an_accommodation_like_object():
    class Row:
        category, text, applies_to, subjects = "timing", "x", "tests", ["Art"]
        time_multiplier, extra_attempts, catalogue_code = Decimal("2.00"), 1, "T-EXT-200"

    item = Item.of(Row())
    assert item.key == "code:t-ext-200" and item.subjects == ("Art",) and item.extra_attempts == 1


# --------------------------------------------------------------------------------------------- the catalogue
def test_catalogue_codes_are_unique_and_entries_valid():
    codes = [e.code for e in catalogue.CATALOGUE]
    assert len(codes) == len(set(codes)) >= 20
    for e in catalogue.CATALOGUE:
        assert e.category in {c.value for c in AccommodationCategory}
        assert e.applies_to in {a.value for a in AppliesTo}
        assert e.text and len(e.text) <= plan_rules.MAX_TEXT
        assert e.code == e.code.upper()


def test_catalogue_has_the_common_entries():
    assert catalogue.entry("t-ext-150").time_multiplier == Decimal("1.50")
    assert catalogue.entry("T-EXT-200").time_multiplier == Decimal("2.00")
    for code in ("S-SEPARATE", "P-READ-HUMAN", "P-READ-TTS", "T-BREAKS", "S-SEATING", "P-NOTES", "R-CALC",
                 "R-REDUCED-CHOICES", "T-CHUNK", "R-ORAL", "R-SCRIBE", "P-LARGE-PRINT", "S-HEADPHONES", "P-CHECK"):
        assert catalogue.entry(code) is not None, code
    assert catalogue.entry("") is None and catalogue.entry("NOPE") is None
    assert [label for label, _ in catalogue.grouped()] == list(catalogue.CATEGORY_LABELS.values())


# ---------------------------------------------------------------------------------------------- the rules
def test_plan_dates_end_before_effective_is_refused_with_a_clear_message():
    dates, problems = plan_rules.check_plan_dates("504", "2026-09-01", "2026-08-31", "", "")
    assert dates is None and [p.field for p in problems] == ["end_on"]
    assert "before the effective date" in problems[0].message


@pytest.mark.parametrize(("args", "field"), [
    (("IEP", "", "", "", ""), "effective_on"),
    (("IEP", "01/09/2026", "", "", ""), "effective_on"),
    (("IEP", "2026-09-01", "", "2026-09-01", ""), "annual_review_due"),
    (("IEP", "2026-09-01", "", "2027-10-01", ""), "annual_review_due"),
    (("IEP", "2026-09-01", "", "", "2023-01-01"), "reevaluation_due"),
])
def test_plan_date_rules(args, field):
    dates, problems = plan_rules.check_plan_dates(*args)
    assert dates is None and field in [p.field for p in problems]


def test_plan_dates_valid():
    dates, problems = plan_rules.check_plan_dates("504", "2026-09-01", "2027-08-31", "2027-08-15", "")
    assert problems == [] and dates.end_on == dt.date(2027, 8, 31)
    # A 504 plan is not held to the IEP's 12-month review rule.
    assert plan_rules.check_plan_dates("504", "2026-09-01", "", "2027-12-01", "")[1] == []


def test_accommodation_rules():
    ok, problems = plan_rules.check_accommodation("timing", "  Tests:   2x time ", "tests", "Maths; Maths;Science",
                                                  "2x", "1")
    assert problems == [] and ok.text == "Tests: 2x time" and ok.subjects == ("Maths", "Science")
    assert ok.time_multiplier == Decimal("2.00") and ok.extra_attempts == 1
    _, problems = plan_rules.check_accommodation("colour", "", "everywhere", "", "9", "-1")
    assert {p.field for p in problems} == {"category", "text", "applies_to", "time_multiplier", "extra_attempts"}


# ------------------------------------------------------------------------------------------- plan policy
def _actor(pid, grants=(), roles=("teacher",)):
    return ActorFacts(pid, frozenset(roles), frozenset(grants), False, ())


STUDENT = StudentFacts(1, frozenset({10, 11}), ())


def test_only_the_plans_own_case_manager_edits_it():
    assert decide_plan(_actor(10, ["case_manager"]), STUDENT, Action.EDIT_PLAN, 10).allowed
    other = decide_plan(_actor(11, ["case_manager"]), STUDENT, Action.EDIT_PLAN, 10)
    assert not other.allowed and other.relationship == "case_manager"
    outside = decide_plan(_actor(12, ["case_manager"]), STUDENT, Action.EDIT_PLAN, 10)
    assert not outside.allowed and outside.relationship == "support"


def test_admins_assign_case_managers_and_create_plans_but_do_not_edit():
    admin = _actor(20, ["district_admin"], ())
    assert decide(admin, STUDENT, Action.ASSIGN_CASE_MANAGER).allowed
    assert decide(admin, STUDENT, Action.CREATE_PLAN).allowed
    assert not decide_plan(admin, STUDENT, Action.EDIT_PLAN, 10).allowed
    assert not decide(_actor(10, ["case_manager"]), STUDENT, Action.ASSIGN_CASE_MANAGER).allowed
    assert decide(_actor(10, ["case_manager"]), STUDENT, Action.CREATE_PLAN).allowed
    assert not decide(_actor(12, ["case_manager"]), STUDENT, Action.CREATE_PLAN).allowed
