"""Every string shown to a user exists in Simplified Chinese and English."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from support import sign_in

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "quotaflow/translations/zh/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def source_messages() -> set[str]:
    methods = [("quotaflow/**.py", "python"), ("quotaflow/web/templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=methods, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_is_translated() -> None:
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    messages = source_messages()
    assert len(messages) > 40
    missing = sorted(m for m in messages if not (catalog.get(m) and catalog.get(m).string))
    assert missing == [], f"untranslated (run scripts/i18n-update and translate): {missing}"
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert fuzzy == []
    for message in catalog:
        if message.id:
            assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id


def test_pages_switch_language(app) -> None:
    client = sign_in(app.test_client(), "head.east")  # a zh user
    zh = client.get("/org").data.decode()
    assert 'lang="zh-CN"' in zh
    assert "组织" in zh
    client.post("/language", data={"lang": "en", "next": "/org"})
    en = client.get("/org").data.decode()
    assert 'lang="en"' in en
    assert "Organisation" in en
    assert "组织" not in en.split("<main")[0]
    client.post("/language", data={"lang": "xx", "next": "/org"})
    assert 'lang="en"' in client.get("/org").data.decode()


def test_browser_language_is_used_before_sign_in(app) -> None:
    client = app.test_client()
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).data.decode()
    assert "登录" in zh
    en = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).data.decode()
    assert "Sign in" in en
