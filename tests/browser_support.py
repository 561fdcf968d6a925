"""Helpers for the real-browser tests (importable as ``browser_support``)."""

from __future__ import annotations

import re

from babel.support import Translations
from playwright.sync_api import Page, expect
from support import DEMO_PASSWORD

from quotaflow.i18n import TRANSLATIONS_DIR


def translated(message: str, lang: str) -> str:
    """``message`` as the app shows it in ``lang`` (the msgid itself while it has no translation)."""
    if lang == "en":
        return message
    return Translations.load(str(TRANSLATIONS_DIR), [lang], "messages").gettext(message)


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))


def switch_language(page: Page, lang: str) -> None:
    html_lang = "zh-CN" if lang == "zh" else "en"
    page.locator(f"header form button[name=lang][value={lang}]").click()
    expect(page.locator("html")).to_have_attribute("lang", html_lang)
