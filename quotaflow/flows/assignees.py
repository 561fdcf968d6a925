"""Resolving a node's assignee rules to usernames, from a directory given as plain data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quotaflow.flows.spec import Assignee


@dataclass(frozen=True)
class Directory:
    """Who is who, as plain data a service builds from its tables.

    ``grants`` are (username, role, scope unit path or None for everywhere); ``units``
    maps unit code -> path ("/1/4/"); ``heads`` unit code -> username; ``managers``
    username -> their manager's username. Only ``users`` can be assigned.
    """

    users: frozenset[str] = frozenset()
    grants: tuple[tuple[str, str, str | None], ...] = ()
    units: Mapping[str, str] = field(default_factory=dict)
    heads: Mapping[str, str] = field(default_factory=dict)
    managers: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"users": sorted(self.users), "grants": [list(g) for g in self.grants],
                "units": dict(self.units), "heads": dict(self.heads),
                "managers": dict(self.managers)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Directory:
        return cls(frozenset(doc.get("users", ())),
                   tuple((g[0], g[1], g[2]) for g in doc.get("grants", ())),
                   dict(doc.get("units", {})), dict(doc.get("heads", {})),
                   dict(doc.get("managers", {})))


def _parent_code(directory: Directory, unit: str) -> str | None:
    path = directory.units.get(unit)
    if not path:
        return None
    parent = path.rstrip("/").rsplit("/", 1)[0] + "/"
    return next((code for code, p in directory.units.items() if p == parent), None)


def _one(rule: Assignee, directory: Directory, *, initiator: str, unit: str,
         data: Mapping[str, Any]) -> list[str]:
    if rule.by == "user":
        found = [str(rule.value)]
    elif rule.by == "field":
        value = data.get(str(rule.value))
        found = [value] if isinstance(value, str) else []
    elif rule.by == "role":
        path = directory.units.get(unit, "")
        found = [user for user, role, scope in directory.grants
                 if role == rule.value and (scope is None or path.startswith(scope))]
    elif rule.by == "unit_head":
        code = {"subject": unit, "parent": _parent_code(directory, unit)}.get(
            str(rule.value), str(rule.value))
        found = [directory.heads[code]] if code in directory.heads else []
    else:  # manager N levels up
        user: str | None = initiator
        for _ in range(int(rule.value)):
            user = directory.managers.get(user) if user is not None else None
        found = [user] if user is not None else []
    return [u for u in found if u in directory.users]


def resolve(rules: Iterable[Assignee], directory: Directory, *, initiator: str, unit: str,
            data: Mapping[str, Any]) -> list[str]:
    """Usernames for ``rules`` in rule order, duplicates collapsed (first one kept)."""
    out: list[str] = []
    for rule in rules:
        for user in _one(rule, directory, initiator=initiator, unit=unit, data=data):
            if user not in out:
                out.append(user)
    return out
