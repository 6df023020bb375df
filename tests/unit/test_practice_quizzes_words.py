"""The practice LMS's web service parsing and how its quiz page words a time limit (no database)."""

from __future__ import annotations

import pytest

from lti_app.demo import practice_quizzes as pq


def test_php_style_fields_nest_as_moodle_reads_them():
    form = pq.unflatten([("wsfunction", "mod_quiz_save_overrides"), ("data[quizid]", "7"),
                         ("data[overrides][1][userid]", "102"), ("data[overrides][0][userid]", "101"),
                         ("data[overrides][0][timelimit]", "1800")])
    assert form["data"]["quizid"] == "7"
    assert [o["userid"] for o in pq._items(form["data"]["overrides"])] == ["101", "102"]  # in index order


@pytest.mark.parametrize("value", ["x", "1.5", {"a": "1"}])
def test_a_number_parameter_refuses_what_is_not_an_integer(value):
    with pytest.raises(pq.WsError) as refused:
        pq._int(value, "timelimit")
    assert refused.value.errorcode == "invalidparameter" and "timelimit" in refused.value.message


def test_a_scalar_where_an_array_belongs_is_refused():
    with pytest.raises(pq.WsError):
        pq._items("101")


@pytest.mark.parametrize(("seconds", "words"), [(1800, "30 min"), (4050, "1 h 7 min 30 s"), (5400, "1 h 30 min"),
                                                (3600, "1 h"), (45, "45 s")])
def test_a_time_limit_is_worded_as_a_teacher_reads_it(seconds, words):
    assert pq.duration(seconds) == words
