"""A form spec that uses every widget (importable as ``form_support``)."""

from __future__ import annotations

SPEC = {
    "key": "evidence",
    "title_en": "Evidence",
    "title_zh": "证据",
    "schema": {
        "type": "object",
        "required": ["amount", "reason"],
        "properties": {
            "amount": {"type": "number", "minimum": 0, "maximum": 1000000},
            "people": {"type": "integer", "minimum": 1},
            "reason": {"type": "string", "minLength": 3, "maxLength": 500},
            "city": {"enum": ["new", "mature"]},
            "urgent": {"type": "boolean"},
            "due": {"type": "string", "format": "date"},
            "screenshot": {"type": "integer"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["customer"],
                    "properties": {"customer": {"type": "string"}, "value": {"type": "number"}},
                },
            },
        },
    },
    "ui": {
        "order": ["reason", "amount"],
        "widgets": {"reason": "textarea", "screenshot": "file", "lines": "rows"},
        "labels": {"amount": {"en": "Amount", "zh": "金额"},
                   "lines.customer": {"en": "Customer", "zh": "客户"}},
        "help": {"amount": {"en": "In yuan.", "zh": "单位：元。"}},
        "options": {"city": {"new": {"en": "Newly opened", "zh": "新开"}}},
        "editable_by": {"people": ["hrbp", "admin"]},
    },
}
