"""Language choice and message catalogues (Simplified Chinese and English)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, request, session
from flask_login import current_user

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
LANGUAGE_NAMES = {"zh": "简体中文", "en": "English"}


def select_locale() -> str:
    """Explicit choice in the session, else the user's setting, else the browser's."""
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every messages.po to messages.mo (part of the build; see README)."""
    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as handle:
            write_mo(handle, catalog)
        written.append(mo_path)
    return written
