"""The data-collection form, generated from a factor model's input fields.

Pure: the same model document always yields the same form spec, so a new form version
is needed only when the model's fields (names, types, ranges, labels, help) change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quotaflow.forms.inputs import input_schema
from quotaflow.forms.spec import check_form_spec

INPUTS_FORM_KEY = "inputs"
WIDGET_BY_TYPE = {"number": "number", "integer": "number", "boolean": "checkbox"}


def inputs_form_spec(model_doc: Mapping[str, Any]) -> dict[str, Any]:
    """A valid form spec for one unit's inputs under the factor model ``model_doc``."""
    fields = list(model_doc.get("fields", ()))
    labels: dict[str, dict[str, str]] = {}
    help_texts: dict[str, dict[str, str]] = {}
    for f in fields:
        name = f["name"]
        en = f.get("label_en") or name
        labels[name] = {"en": en, "zh": f.get("label_zh") or en}
        help_en = f.get("help_en") or f.get("help")
        help_zh = f.get("help_zh") or help_en
        if help_en or help_zh:
            help_texts[name] = {"en": help_en or help_zh, "zh": help_zh or help_en}
    spec = {
        "key": INPUTS_FORM_KEY,
        "title_en": "Unit inputs",
        "title_zh": "单元输入数据",
        "description": "Generated from the active factor model's input fields.",
        "schema": input_schema(model_doc),
        "ui": {
            "order": [f["name"] for f in fields],
            "widgets": {f["name"]: WIDGET_BY_TYPE[f.get("type", "number")] for f in fields},
            "labels": labels,
            "help": help_texts,
        },
    }
    return check_form_spec(spec)
