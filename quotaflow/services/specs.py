"""Spec versions: validate, save (immutable, hashed, numbered), activate, roll back, compare.

Every change is audited in the same transaction. Kinds and their validators are in
:mod:`quotaflow.services.spec_kinds`; the whole configuration as one file is in
:mod:`quotaflow.services.bundle`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules import FactorModel, SpecError, SpecIssue, load_model
from quotaflow.rules.specs import pointer
from quotaflow.services import audit, spec_kinds
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import spec_queries
from quotaflow.store.models import SpecVersion, User

FACTOR_MODEL_KIND = spec_kinds.FACTOR_MODEL


def content_hash(content: Any) -> str:
    """SHA-256 of the canonical JSON text (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def create_version(
    session: Session, kind: str, key: str, content: Any, author: User | None, note: str | None = None
) -> SpecVersion:
    """Append the next version of a spec as a draft (the caller commits)."""
    latest = spec_queries.latest_number(session, kind, key)
    spec = SpecVersion(
        kind=kind, key=key, version=(latest or 0) + 1, content=content,
        content_hash=content_hash(content), author=author, status="draft", note=note,
    )
    session.add(spec)
    session.flush()
    audit.record(session, author, "create_spec_version", kind, f"{key}@v{spec.version}",
                 after={"hash": spec.content_hash})
    return spec


def activate(session: Session, spec: SpecVersion, actor: User | None) -> None:
    """Make ``spec`` the active version of its key, retiring the previous one."""
    previous = spec_queries.active(session, spec.kind, spec.key)
    if previous is spec:
        return
    if previous is not None:
        spec_queries.retire(session, previous.id)
        session.expire(previous)
    # Flush the retirement first so the one-active unique index never sees two.
    session.flush()
    spec.status = "active"
    session.flush()
    audit.record(session, actor, "activate_spec_version", spec.kind, f"{spec.key}@v{spec.version}",
                 before={"active": previous.version if previous else None}, after={"active": spec.version})


def active_version(session: Session, kind: str, key: str) -> SpecVersion | None:
    return spec_queries.active(session, kind, key)


def active_spec(ctx: Context, kind: str, key: str) -> SpecVersion | None:
    """The active version of ``kind``/``key`` (pages and the API)."""
    return spec_queries.active(ctx.session, kind, key)


def field_labels(ctx: Context) -> dict[str, dict[str, str]]:
    """Labels of input fields from the active factor models: name -> {"en": .., "zh": ..}."""
    labels: dict[str, dict[str, str]] = {}
    for spec in spec_queries.active_of_kind(ctx.session, FACTOR_MODEL_KIND):
        for field in spec.content.get("fields", []):
            name = field.get("name")
            if name:
                labels[name] = {"en": field.get("label_en", name), "zh": field.get("label_zh", name)}
    return labels


# -- validation, versions, activation ---------------------------------------------------------



class SpecServiceError(QuotaFlowError):
    """A refused spec operation: a stable ``code`` and its ``params``."""

    domain = "spec"
    CODE_KINDS = code_kinds(unknown_kind="not_found", not_found="not_found", unchanged="conflict",
                            already_active="conflict")
    CODES = messages.register(domain, {
        "unknown_kind": _l("Unknown spec kind “%(kind)s”."),
        "bad_key": _l("“%(key)s” is not a valid key: use lower-case letters, digits, “_”, “-” and “.”."),
        "not_found": _l("%(kind)s/%(key)s has no version %(version)s."),
        "unchanged": _l("The content is identical to version %(version)s; nothing was saved."),
        "already_active": _l("Version %(version)s is already active."),
        "invalid_spec": _l("Problems found: %(count)s. Nothing was saved."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "", **params)


@dataclass(frozen=True)
class SpecProblem:
    """An issue found in one spec (``kind``/``key``): where it is, what, and its code."""

    kind: str
    key: str
    issue: SpecIssue

    def as_dict(self) -> dict[str, Any]:
        return {**self.issue.as_dict(), "kind": self.kind, "key": self.key}

    def __str__(self) -> str:
        return f"{self.kind}/{self.key} {self.issue}"


class SpecValidationError(SpecServiceError):
    """A spec (or a spec that depends on it) failed validation; nothing was written."""

    def __init__(self, issues: Sequence[SpecIssue | SpecProblem], kind: str = "",
                 key: str = "") -> None:
        self.problems: list[SpecProblem] = [
            p if isinstance(p, SpecProblem) else SpecProblem(kind, key, p) for p in issues]
        super().__init__("invalid_spec", kind=kind, key=key, count=len(self.problems))

    def details(self) -> dict[str, Any]:
        return {"issues": [p.as_dict() for p in self.problems]}

    @property
    def issues(self) -> list[SpecIssue]:
        return [p.issue for p in self.problems]


class ModelResolver:
    """Which factor model a dependent spec is checked against, with pending overrides.

    ``overrides`` maps factor-model keys to content that replaces the active version
    (a version being activated, or the models of a bundle being imported).
    """

    def __init__(self, session: Session, overrides: Mapping[str, Any] | None = None) -> None:
        self.session = session
        self.overrides = dict(overrides or {})
        self._cache: dict[str, FactorModel | None] = {}
        self._active_keys: set[str] | None = None

    def _available(self, key: str) -> bool:
        if self._active_keys is None:
            self._active_keys = spec_queries.active_keys(self.session, FACTOR_MODEL_KIND)
        return key in self.overrides or key in self._active_keys

    def key_for(self, spec_key: str) -> str:
        return spec_kinds.model_key_for(spec_key, self._available)

    def __call__(self, spec_key: str) -> FactorModel | None:
        key = self.key_for(spec_key)
        if key not in self._cache:
            if key in self.overrides:
                content = self.overrides[key]
            else:
                spec = active_version(self.session, FACTOR_MODEL_KIND, key)
                content = spec.content if spec is not None else None
            self._cache[key] = _compile_model(content)
        return self._cache[key]


def _compile_model(content: Any) -> FactorModel | None:
    from quotaflow.plugins import expression_functions

    if not isinstance(content, dict):
        return None
    try:
        return load_model(content, functions=expression_functions())
    except SpecError:
        return None


def require_kind(kind: str) -> spec_kinds.SpecKind:
    found = spec_kinds.get(kind)
    if found is None:
        raise SpecServiceError("unknown_kind", kind=kind)
    return found


def validate_content(session: Session, kind: str, key: str, content: Any,
                     models: ModelResolver | None = None) -> list[SpecIssue]:
    """Every issue of ``content`` as a ``kind`` spec: schema and semantics (nothing written)."""
    spec_kind = require_kind(kind)
    return spec_kind.validate(content, models or ModelResolver(session), key)


def latest_version(session: Session, kind: str, key: str) -> SpecVersion | None:
    return spec_queries.latest(session, kind, key)


def get_version(session: Session, kind: str, key: str, version: int) -> SpecVersion | None:
    return spec_queries.version(session, kind, key, version)


def versions(ctx: Context, kind: str, key: str) -> list[SpecVersion]:
    """All versions of one spec, newest first."""
    return spec_queries.versions(ctx.session, kind, key)


def active_versions(session: Session) -> list[SpecVersion]:
    """Every active version, in dependency order of kinds, then by key."""
    order = {k.name: i for i, k in enumerate(spec_kinds.kinds())}
    found = spec_queries.all_active(session)
    return sorted(found, key=lambda s: (order.get(s.kind, len(order)), s.kind, s.key))


@dataclass(frozen=True)
class SpecSummary:
    """One spec (kind/key) for the overview: its active and latest versions and their count."""

    kind: str
    key: str
    count: int
    latest: int
    active: SpecVersion | None


def summaries(ctx: Context) -> list[SpecSummary]:
    """Every kind/key that has versions, in dependency order of kinds, then by key."""
    session = ctx.session
    rows = spec_queries.version_counts(session)
    active = {(s.kind, s.key): s for s in active_versions(session)}
    order = {k.name: i for i, k in enumerate(spec_kinds.kinds())}
    out = [SpecSummary(kind, key, count, latest, active.get((kind, key)))
           for kind, key, count, latest in rows]
    return sorted(out, key=lambda s: (order.get(s.kind, len(order)), s.kind, s.key))


def stage_version(session: Session, kind: str, key: str, content: Any, author: User | None,
                  note: str | None = None, remote_addr: str | None = None) -> SpecVersion:
    """Append a new draft version (already validated) in the caller's transaction."""
    # A private copy: the version must not change when the caller's dict does later.
    content = json.loads(json.dumps(content, ensure_ascii=False))
    latest = spec_queries.latest_number(session, kind, key)
    spec = SpecVersion(
        kind=kind, key=key, version=(latest or 0) + 1, content=content,
        content_hash=content_hash(content), author=author, status="draft", note=note or None,
    )
    session.add(spec)
    session.flush()
    audit.record(session, author, "create_spec_version", kind, f"{key}@v{spec.version}",
                 after={"hash": spec.content_hash, "note": spec.note}, remote_addr=remote_addr)
    return spec


def activation_problems(session: Session, spec: SpecVersion) -> list[SpecProblem]:
    """What would be invalid if ``spec`` became active: itself, and the specs that use it."""
    overrides = {spec.key: spec.content} if spec.kind == FACTOR_MODEL_KIND else {}
    resolver = ModelResolver(session, overrides)
    problems = [SpecProblem(spec.kind, spec.key, issue)
                for issue in validate_content(session, spec.kind, spec.key, spec.content, resolver)]
    for dependent_kind in spec_kinds.dependents(spec.kind):
        for other in spec_queries.active_of_kind(session, dependent_kind.name):
            if resolver.key_for(other.key) != spec.key:
                continue  # checked against another model, unaffected
            problems += [SpecProblem(other.kind, other.key, issue)
                         for issue in dependent_kind.validate(other.content, resolver, other.key)]
    return problems


def stage_activation(session: Session, spec: SpecVersion, actor: User | None,
                     remote_addr: str | None = None) -> SpecVersion | None:
    """Make ``spec`` active, retiring the previous active version; returns that one."""
    previous = active_version(session, spec.kind, spec.key)
    if previous is spec:
        return previous
    if previous is not None:
        previous.status = "retired"
        # Flush the retirement first so the one-active unique index never sees two.
        session.flush()
    spec.status = "active"
    session.flush()
    rollback = previous is not None and spec.version < previous.version
    audit.record(session, actor, "rollback_spec_version" if rollback else "activate_spec_version",
                 spec.kind, f"{spec.key}@v{spec.version}",
                 before={"active": previous.version if previous else None},
                 after={"active": spec.version, "hash": spec.content_hash},
                 remote_addr=remote_addr)
    return previous


def save_version(session: Session, kind: str, key: str, content: Any, author: User | None,
                 note: str | None = None, *, activate: bool = False,
                 remote_addr: str | None = None) -> SpecVersion:
    """Validate and save the next version of a spec (and optionally activate it); commits.

    Raises :class:`SpecValidationError` with every issue, or :class:`SpecServiceError`
    ("unknown_kind", "bad_key", "unchanged"); nothing is written then.
    """
    require_kind(kind)
    if not spec_kinds.valid_key(key):
        raise SpecServiceError("bad_key", key=key)
    issues = validate_content(session, kind, key, content)
    if issues:
        raise SpecValidationError(issues, kind, key)
    latest = latest_version(session, kind, key)
    if latest is not None and latest.content_hash == content_hash(content):
        raise SpecServiceError("unchanged", kind=kind, key=key, version=latest.version)
    with unit_of_work(session):
        spec = stage_version(session, kind, key, content, author, note, remote_addr)
        if activate:
            problems = activation_problems(session, spec)
            if problems:
                raise SpecValidationError(problems, kind, key)
            stage_activation(session, spec, author, remote_addr)
    return spec


def activate_version(session: Session, kind: str, key: str, version: int, actor: User | None,
                     remote_addr: str | None = None) -> SpecVersion:
    """Activate a version (an earlier one: a rollback), after checking it and its dependents.

    The previous active version is retired. Commits; on any problem nothing changes.
    """
    require_kind(kind)
    spec = get_version(session, kind, key, version)
    if spec is None:
        raise SpecServiceError("not_found", kind=kind, key=key, version=version)
    if spec.status == "active":
        raise SpecServiceError("already_active", kind=kind, key=key, version=version)
    problems = activation_problems(session, spec)
    if problems:
        raise SpecValidationError(problems, kind, key)
    with unit_of_work(session):
        stage_activation(session, spec, actor, remote_addr)
    return spec


# -- readable differences ----------------------------------------------------------------------

#: Array items that are objects with one of these fields are matched by it, not by position.
IDENTITY_FIELDS = ("key", "name")


@dataclass(frozen=True)
class Change:
    """One difference between two spec contents.

    ``pointer`` is a JSON pointer into the newer content (into the older one for
    "removed"); ``label`` is the same place with array items named by their key.
    """

    pointer: str
    kind: str  # "added" | "removed" | "changed"
    old: Any = None
    new: Any = None
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "kind": self.kind, "old": self.old, "new": self.new,
                "label": self.label}


def diff_versions(a: Any, b: Any) -> list[Change]:
    """Differences from ``a`` to ``b`` (versions or plain contents), at JSON-pointer level.

    Arrays of objects carrying a unique "key" (or "name") are compared item by item by
    that identity, so reordering factors is not reported as everything changing.
    """
    old = a.content if isinstance(a, SpecVersion) else a
    new = b.content if isinstance(b, SpecVersion) else b
    changes: list[Change] = []
    _diff(old, new, "", "", changes)
    return changes


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _identity_field(items: list[Any]) -> str | None:
    for name in IDENTITY_FIELDS:
        if items and all(isinstance(i, dict) and isinstance(i.get(name), str) for i in items) \
                and len({i[name] for i in items}) == len(items):
            return name
    return None


def _diff(old: Any, new: Any, ptr: str, label: str, out: list[Change]) -> None:
    if _canonical(old) == _canonical(new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k, value in old.items():
            where, named = ptr + pointer(k), f"{label}.{k}" if label else str(k)
            if k in new:
                _diff(value, new[k], where, named, out)
            else:
                out.append(Change(where, "removed", value, None, named))
        for k, value in new.items():
            if k not in old:
                out.append(Change(ptr + pointer(k), "added", None, value,
                                  f"{label}.{k}" if label else str(k)))
        return
    if isinstance(old, list) and isinstance(new, list):
        field = _identity_field(old) if old else _identity_field(new)
        if field is not None and (not new or _identity_field(new) == field):
            old_at = {item[field]: (i, item) for i, item in enumerate(old)}
            new_keys = {item[field] for item in new}
            for ident, (i, item) in old_at.items():
                if ident not in new_keys:
                    out.append(Change(ptr + pointer(i), "removed", item, None, f"{label}[{ident}]"))
            for j, item in enumerate(new):
                ident = item[field]
                if ident in old_at:
                    _diff(old_at[ident][1], item, ptr + pointer(j), f"{label}[{ident}]", out)
                else:
                    out.append(Change(ptr + pointer(j), "added", None, item, f"{label}[{ident}]"))
            return
        for i in range(max(len(old), len(new))):
            where, named = ptr + pointer(i), f"{label}[{i}]"
            if i >= len(new):
                out.append(Change(where, "removed", old[i], None, named))
            elif i >= len(old):
                out.append(Change(where, "added", None, new[i], named))
            else:
                _diff(old[i], new[i], where, named, out)
        return
    out.append(Change(ptr, "changed", old, new, label))
