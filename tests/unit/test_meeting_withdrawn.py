"""A held meeting withdrawn (removed, its date corrected, no longer held): the plan date it set goes back
(``domain.deadlines.date_without_meeting``), so the deadline it met is due or overdue again — annual review
(34 CFR 300.324(b)(1)(i)), reevaluation (300.303), eligibility (300.306, which starts 300.323(c)(1))."""

from __future__ import annotations

import datetime as dt

from lti_app.domain.deadlines import DateChange, date_without_meeting

X, A, B, C = dt.date(2025, 1, 10), dt.date(2026, 1, 12), dt.date(2026, 3, 2), dt.date(2026, 4, 1)


def test_300_324_b_1_i_removed_annual_review_puts_back_the_last_meeting_date():
    changes = [DateChange(1, "last_meeting_on", X, A)]
    assert date_without_meeting(A, 1, "last_meeting_on", changes) == (True, X)


def test_300_306_removed_eligibility_meeting_of_a_new_student_leaves_no_date():
    changes = [DateChange(1, "eligibility_determined_on", None, A)]
    assert date_without_meeting(A, 1, "eligibility_determined_on", changes) == (True, None)


def test_300_303_a_date_set_again_since_stays():
    # The deadlines page (no change row) or a later meeting set the date since: it is not the meeting's any more.
    assert date_without_meeting(C, 1, "last_evaluation_on", [DateChange(1, "last_evaluation_on", X, A)]) == (False, C)
    later = [DateChange(1, "last_evaluation_on", X, A), DateChange(2, "last_evaluation_on", A, B)]
    assert date_without_meeting(B, 1, "last_evaluation_on", later) == (False, B)


def test_300_324_b_1_i_going_back_passes_over_a_meeting_withdrawn_before():
    # A set X -> A, B set A -> B; A removed first (B stays), then B removed: X, not the A of a meeting that did not
    # happen.
    changes = [DateChange(1, "last_meeting_on", X, A, undone=True), DateChange(2, "last_meeting_on", A, B)]
    assert date_without_meeting(B, 2, "last_meeting_on", changes) == (True, X)


def test_300_324_b_1_i_the_later_meeting_withdrawn_first_gives_back_the_earlier_live_one():
    changes = [DateChange(1, "last_meeting_on", X, A), DateChange(2, "last_meeting_on", A, B)]
    assert date_without_meeting(B, 2, "last_meeting_on", changes) == (True, A)


def test_a_meeting_that_set_nothing_or_was_withdrawn_already_changes_nothing():
    assert date_without_meeting(A, 3, "last_meeting_on", [DateChange(1, "last_meeting_on", X, A)]) == (False, A)
    done = [DateChange(1, "last_meeting_on", X, A, undone=True)]
    assert date_without_meeting(A, 1, "last_meeting_on", done) == (False, A)
    other_field = [DateChange(1, "last_evaluation_on", X, A)]
    assert date_without_meeting(A, 1, "last_meeting_on", other_field) == (False, A)
