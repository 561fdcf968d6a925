"""Shared plumbing for the rules specs: JSON-Schema validation and pointed errors.

Every spec kind (factor model, scenario presets, risk rules) is validated twice at the
door: structurally against its JSON Schema in ``quotaflow/schemas/``, then semantically by its
loader. Both stages report :class:`SpecIssue` objects that carry a JSON pointer (and,
for expressions, the column), so an editor can underline the exact place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where (JSON pointer, expression column), what, and a code."""

    pointer: str
    message: str
    code: str = "invalid"
    column: int | None = None

    def __str__(self) -> str:
        where = self.pointer or "/"
        col = f" (column {self.column})" if self.column is not None else ""
        return f"{where}{col}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "message": self.message, "code": self.code,
                "column": self.column}


class SpecError(ValueError):
    """A spec failed validation; ``issues`` lists every problem found, first one first."""

    kind = "spec"

    def __init__(self, issues: list[SpecIssue] | SpecIssue | str, *, pointer: str = "",
                 column: int | None = None, code: str = "invalid") -> None:
        if isinstance(issues, str):
            issues = [SpecIssue(pointer, issues, code, column)]
        elif isinstance(issues, SpecIssue):
            issues = [issues]
        self.issues: list[SpecIssue] = list(issues)
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"invalid {self.kind}: {self.issues[0]}"
        if len(self.issues) > 1:
            head += f" (and {len(self.issues) - 1} more)"
        return head

    # The first issue's fields, for callers that show one message.
    @property
    def pointer(self) -> str:
        return self.issues[0].pointer

    @property
    def message(self) -> str:
        return self.issues[0].message

    @property
    def column(self) -> int | None:
        return self.issues[0].column

    @property
    def code(self) -> str:
        return self.issues[0].code


def pointer(*parts: str | int) -> str:
    """Build an RFC 6901 JSON pointer from path parts (escaping ``~`` and ``/``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``quotaflow/schemas/<name>.schema.json`` once."""
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _validator(name: str) -> Any:  # a jsonschema Draft202012Validator
    # Imported lazily: jsonschema is a few ms to import and not needed to run a model.
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_issues(name: str, doc: Any) -> list[SpecIssue]:
    """Structural problems of ``doc`` against the named schema, in document order."""
    errors = sorted(_validator(name).iter_errors(doc), key=lambda e: [str(p) for p in e.path])
    return [SpecIssue(pointer(*e.absolute_path), e.message, f"schema.{e.validator}")
            for e in errors]


def read_json(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Accept a parsed document or a path to a JSON file."""
    if isinstance(source, dict):
        return source
    with open(source, encoding="utf-8") as fh:
        return json.load(fh)


def find_column(expression: str, name: str) -> int | None:
    """1-based column of the first use of ``name`` as a whole word in ``expression``."""
    import re

    m = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", expression)
    return m.start() + 1 if m else None
