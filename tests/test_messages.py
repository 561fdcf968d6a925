"""The one message catalogue: every message has a Chinese translation; params read as on pages."""

from __future__ import annotations

from quotaflow import messages
from quotaflow.errors import Invalid, NotFound
from quotaflow.i18n import compile_catalogs


class _Sample(Invalid):
    domain = "sample"


def test_every_catalogue_message_is_translated():
    compile_catalogs()
    messages.translations.cache_clear()
    zh = messages.translations("zh")
    missing = [key for key, text in messages.CATALOGUE.items() if zh.gettext(text) == text]
    assert missing == []


def test_render_in_both_languages():
    error = NotFound("not_found")
    assert error.localized("en") == "Not found, or outside your scope."
    assert error.localized("zh") != error.localized("en")


def test_numbers_read_with_separators_and_unknown_codes_fall_back():
    messages.register("sample", {"too_big": "Enter at most %(maximum)s yuan."})
    try:
        assert _Sample("too_big", "/x", maximum=52060000).message == "Enter at most 52,060,000 yuan."
        assert _Sample("no_such_code").message == "no_such_code"
    finally:
        del messages.CATALOGUE["sample.too_big"]


def test_register_refuses_a_different_text_for_the_same_key():
    messages.register("sample", {"twice": "One text."})
    try:
        try:
            messages.register("sample", {"twice": "Another text."})
        except ValueError as exc:
            assert "twice" in str(exc)
        else:
            raise AssertionError("a second text for one key was accepted")
    finally:
        del messages.CATALOGUE["sample.twice"]
