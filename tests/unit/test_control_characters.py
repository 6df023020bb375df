"""``has_control_characters``: every form and query value goes through it on every request (security's request
guard), so it is one compiled character class; this pins it to its definition for every code point up to U+01FF."""

from __future__ import annotations

import pytest

from lti_app.domain.casework_rules import has_control_characters


def _definition(code: int) -> bool:
    """C0 controls except tab, line feed and carriage return; DEL; C1 controls."""
    return (code < 32 and chr(code) not in "\t\n\r") or 127 <= code < 160


@pytest.mark.parametrize("code", range(0x200))
def test_each_code_point_is_judged_by_the_definition_alone_or_in_text(code):
    assert has_control_characters(chr(code)) is _definition(code)
    assert has_control_characters(f"Period 3{chr(code)} Biology") is _definition(code)


def test_ordinary_text_and_long_tokens_pass():
    assert not has_control_characters("")
    assert not has_control_characters("Line one\r\nLine two\twith a tab; naïve café — “quotes” ✓")
    assert not has_control_characters("eyJhbGciOiJSUzI1NiJ9." + "A" * 5000 + ".sig-_")
    assert has_control_characters("eyJhbGciOiJSUzI1NiJ9." + "A" * 5000 + "\x00")
