"""Pure rules of accommodations applied in the LMS: targets per quiz, only-raise merge, Moodle whole-record merge."""

from __future__ import annotations

from decimal import Decimal

from lti_app.domain.lms_actions import (
    Field,
    LmsRule,
    MoodleOverride,
    Outcome,
    QuizFacts,
    QuizKind,
    check_rule,
    merge_moodle_override,
    merge_value,
    required_for,
    window_cuts_time,
)

CLASSIC_30 = QuizFacts(QuizKind.CLASSIC, 30 * 60, 1)


def test_multiplier_gives_canvas_extra_minutes_rounded_up():
    assert required_for([LmsRule(multiplier=Decimal("1.25"))], QuizFacts(QuizKind.CLASSIC, 25 * 60, 1)) == {
        Field.EXTRA_TIME: 7}  # 6.25 minutes: never less than the plan


def test_untimed_quiz_needs_no_extra_time_but_attempts_still_apply():
    rule = LmsRule(multiplier=Decimal("2"), extra_attempts=1)
    assert required_for([rule], QuizFacts(QuizKind.CLASSIC, None, 1)) == {Field.EXTRA_ATTEMPTS: 1}


def test_several_plans_give_the_most_generous_value_per_quiz():
    rules = [LmsRule(multiplier=Decimal("1.5")), LmsRule(extra_minutes=20)]
    assert required_for(rules, CLASSIC_30) == {Field.EXTRA_TIME: 20}
    assert required_for(rules, QuizFacts(QuizKind.CLASSIC, 60 * 60, 1)) == {Field.EXTRA_TIME: 30}


def test_moodle_target_is_the_whole_time_limit_in_seconds_and_unlimited_attempts_need_nothing():
    rule = LmsRule(multiplier=Decimal("1.5"), extra_attempts=2)
    assert required_for([rule], QuizFacts(QuizKind.MOODLE, 1800, 0)) == {Field.TIMELIMIT: 2700}
    assert required_for([rule], QuizFacts(QuizKind.MOODLE, 1800, 1)) == {Field.TIMELIMIT: 2700, Field.ATTEMPTS: 3}


def test_canvas_extra_time_is_capped_at_one_week():
    assert required_for([LmsRule(multiplier=Decimal("4"))], QuizFacts(QuizKind.CLASSIC, 5000 * 60, 1)) == {
        Field.EXTRA_TIME: 10080}


def test_reduced_choices_only_on_new_quizzes():
    rule = LmsRule(reduce_choices=True)
    assert required_for([rule], QuizFacts(QuizKind.NEW, 600)) == {Field.REDUCE_CHOICES: True}
    assert required_for([rule], CLASSIC_30) == {}


def test_merge_raises_a_lower_value():
    d = merge_value(Field.EXTRA_TIME, 5, 15, None, 0)
    assert (d.write, d.value, d.outcome) == (True, 15, Outcome.APPLIED)


def test_merge_never_lowers_a_teachers_value():
    d = merge_value(Field.EXTRA_TIME, 45, 15, None, 0)
    assert (d.write, d.value, d.outcome) == (False, 45, Outcome.KEPT)


def test_merge_follows_the_plan_down_where_the_value_is_caseloads_own():
    d = merge_value(Field.EXTRA_TIME, 30, 15, 30, 0)
    assert (d.write, d.value, d.outcome) == (True, 15, Outcome.WITHDRAWN)


def test_merge_removes_caseloads_own_value_when_the_plan_no_longer_requires_it_but_not_a_teachers():
    assert merge_value(Field.EXTRA_TIME, 15, None, 15, 0).value == 0
    teacher = merge_value(Field.EXTRA_TIME, 25, None, 15, 0)
    assert (teacher.write, teacher.outcome) == (False, None)


def test_merge_of_an_equal_value_does_nothing_and_records_nothing():
    d = merge_value(Field.EXTRA_TIME, 15, 15, 15, 0)
    assert (d.write, d.outcome) == (False, None)


def test_moodle_merge_sends_the_whole_record_so_the_teachers_fields_survive():
    quiz = QuizFacts(QuizKind.MOODLE, 1200, 1)
    existing = MoodleOverride(id=5, userid=31, timeclose=1_900_000_000, attempts=3, password="orchid")
    decision = merge_value(Field.TIMELIMIT, 1200, 1800, None, 1200)
    merged = merge_moodle_override(quiz, existing, 31, [decision])
    assert merged is not None
    assert merged.as_params() == {"id": 5, "userid": 31, "timeclose": 1_900_000_000, "timelimit": 1800,
                                  "attempts": 3, "password": "orchid"}


def test_rule_checks_name_the_field_and_refuse_an_empty_rule():
    rule, problems = check_rule("multiplier", "1.5x", "", "1", False, True)
    assert problems == [] and rule == LmsRule(Decimal("1.50"), None, 1, False, True)
    _, problems = check_rule("multiplier", "9", "", "", False, False)
    assert problems[0].field == "lms_multiplier"
    _, problems = check_rule("minutes", "", "abc", "", False, False)
    assert problems[0].field == "lms_extra_minutes"
    _, problems = check_rule("", "", "", "", False, False)
    assert problems[0].field == "lms_time_kind"
    _, problems = check_rule("", "", "", "1", False, True)
    assert problems[0].field == "lms_window_guard"


def test_window_guard_sees_a_window_shorter_than_the_students_time():
    assert window_cuts_time(1000, 1000 + 1800, 2700).cut_short
    assert not window_cuts_time(1000, 1000 + 3600, 2700).cut_short
    assert not window_cuts_time(None, None, 2700).cut_short


def test_window_guard_moves_the_students_close_by_their_extra_time_only_when_the_window_is_too_short():
    guarded = LmsRule(multiplier=Decimal("1.5"), window_guard=True)
    in_class = QuizFacts(QuizKind.MOODLE, 1800, 1, opens_at=36000, closes_at=36000 + 1800)
    assert required_for([guarded], in_class)[Field.TIMECLOSE] == 36000 + 1800 + 900
    week = QuizFacts(QuizKind.MOODLE, 1800, 1, opens_at=36000, closes_at=36000 + 7 * 86400)
    assert Field.TIMECLOSE not in required_for([guarded], week)
    assert Field.TIMECLOSE not in required_for([LmsRule(multiplier=Decimal("1.5"))], in_class)  # no guard: warn only
    canvas = QuizFacts(QuizKind.CLASSIC, 1800, 1, opens_at=36000, closes_at=36000 + 1800)
    assert required_for([guarded], canvas)[Field.LOCK_AT] == 36000 + 2700
    practice = QuizFacts(QuizKind.CLASSIC, 1800, 1, opens_at=36000, closes_at=36000 + 1800, has_assignment=False)
    assert Field.LOCK_AT not in required_for([guarded], practice)


def test_quiz_events_name_the_course_whose_quizzes_changed():
    from lti_app.domain.lms_actions import quiz_event_course

    body = {"context_id": "30000000000501", "context_type": "Course", "submission_types": "online_quiz"}
    assert quiz_event_course("canvas", "assignment_updated", {"body": body}) == "501"  # global id, same course
    assert quiz_event_course("canvas", "assignment_updated", {"body": {**body, "submission_types": "external_tool"}}
                             ) == "501"
    assert quiz_event_course("canvas", "assignment_updated", {"body": {**body, "submission_types": "online_upload"}}
                             ) is None
    assert quiz_event_course("canvas", "enrollment_created", {"body": body}) is None
    assert quiz_event_course("moodle", "user_override_updated", {"course": {"id": "7"}}) == "7"
    assert quiz_event_course("moodle", "user_override_updated", {"course": {"id": "7; drop"}}) is None
