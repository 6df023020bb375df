"""The sync health page's LMS errors are kept and shown in words: no token, no URL query string (issue #12)."""

from __future__ import annotations

from lti_app.services.lms_actions.backlog import in_words


def test_errors_are_kept_in_words_without_tokens_or_query_strings():
    raw = ("Moodle could not be used (HTTP 503 from https://moodle.example/webservice/rest/server.php?wstoken=abc123"
           "&wsfunction=x) Authorization: Bearer eyJhbGciOi.secret access_token=zzz")
    words = in_words(raw)
    assert "abc123" not in words and "eyJhbGciOi" not in words and "zzz" not in words
    assert "HTTP 503 from https://moodle.example/webservice/rest/server.php" in words
    assert len(in_words("x" * 900)) == 500
