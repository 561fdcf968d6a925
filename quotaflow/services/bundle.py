"""The whole active configuration as one JSON file: export, and a validated import.

A bundle lists every active spec of a registered kind (kind, key, version number,
content hash, content).
Import checks everything first: the bundle's shape, then each spec against its schema
and semantics in dependency order (factor models before the presets and risk rules
checked against them), including active specs left out of the bundle that depend on a
model the bundle replaces. On any problem nothing is written; otherwise one
transaction creates a version where the content differs from the active one (or
reuses an existing version with that exact content) and activates it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quotaflow import messages, safejson
from quotaflow.errors import QuotaFlowError
from quotaflow.messages import _l
from quotaflow.rules import SpecIssue
from quotaflow.rules.specs import pointer
from quotaflow.services import audit, spec_kinds, specs
from quotaflow.services.specs import ModelResolver, SpecProblem
from quotaflow.services.uow import unit_of_work
from quotaflow.store.models import SpecVersion, User

#: The largest configuration bundle a page or the API accepts.
MAX_BUNDLE_BYTES = 5 * 1024 * 1024

BUNDLE_FORMAT = "quotaflow-config-bundle"
FORMAT_VERSION = 1
IMPORT_NOTE = "bundle import"

BUNDLE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "format_version", "specs"],
    # A bundle carries specs only: inputs (unit values) are written through their own
    # checked paths, never smuggled in beside the specs.
    "additionalProperties": False,
    "properties": {
        "format": {"const": BUNDLE_FORMAT},
        "format_version": {"const": FORMAT_VERSION},
        "exported_at": {"type": "string"},
        "specs": {"type": "array", "items": {
            "type": "object",
            "required": ["kind", "key", "content"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string"},
                "key": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "content_hash": {"type": "string"},
                "content": {},
            },
        }},
    },
}


class BundleError(QuotaFlowError):
    """The bundle was refused; ``problems`` name each place (a pointer into the bundle)."""

    domain = "bundle"
    CODES = messages.register(domain, {
        "invalid_bundle": _l("The bundle was refused, nothing was imported: %(count)s "
                             "problem(s), the first: %(first)s"),
    })

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("invalid_bundle", "", count=len(problems),
                         first=str(problems[0]).strip() if problems else "")

    def details(self) -> dict[str, Any]:
        return {"issues": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class ImportedSpec:
    """What an import did to one spec: "unchanged", "activated" (an existing version) or "created"."""

    kind: str
    key: str
    action: str
    version: int


def export_bundle(session: Session) -> dict[str, Any]:
    """Every active spec of a registered kind with its content, version number and hash.

    Specs of kinds nobody registers cannot be validated on import, so they stay out.
    """
    known = {k.name for k in spec_kinds.kinds()}
    return {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "specs": [{"kind": s.kind, "key": s.key, "version": s.version,
                   "content_hash": s.content_hash, "content": s.content}
                  for s in specs.active_versions(session) if s.kind in known],
    }


def dumps(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"


def parse(text: str | bytes) -> Any:
    """Read a bundle file's text; a JSON syntax error becomes a BundleError with its line."""
    try:
        return safejson.loads(text)
    except (safejson.JsonTooDeep, safejson.JsonNotText) as exc:
        raise BundleError([_problem("", f"not valid JSON: {exc}", "not_json")]) from None
    except UnicodeDecodeError:
        raise BundleError([_problem("", "the file is not UTF-8 text", "not_json")]) from None
    except json.JSONDecodeError as exc:
        raise BundleError([_problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                                        f"column {exc.colno}", "not_json", exc.colno)]) from None


def _problem(ptr: str, message: str, code: str, column: int | None = None, kind: str = "",
             key: str = "") -> SpecProblem:
    return SpecProblem(kind, key, SpecIssue(ptr, message, code, column))


def check_bundle(session: Session, bundle: Any) -> list[SpecProblem]:
    """Every problem of a parsed bundle, each pointing into the bundle (nothing written)."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(BUNDLE_SCHEMA).iter_errors(bundle),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        return [_problem(pointer(*e.absolute_path), e.message, f"schema.{e.validator}")
                for e in errors]
    problems: list[SpecProblem] = []
    seen: dict[tuple[str, str], int] = {}
    items = bundle["specs"]
    for i, item in enumerate(items):
        kind, key, ptr = item["kind"], item["key"], pointer("specs", i)
        if spec_kinds.get(kind) is None:
            problems.append(_problem(f"{ptr}/kind", f"unknown spec kind {kind!r}", "unknown_kind",
                                     kind=kind, key=key))
        if not spec_kinds.valid_key(key):
            problems.append(_problem(f"{ptr}/key", specs.SpecServiceError("bad_key", key=key).message,
                                     "bad_key", kind=kind, key=key))
        if (kind, key) in seen:
            problems.append(_problem(ptr, f"{kind}/{key} is already in the bundle at "
                                          f"/specs/{seen[kind, key]}", "duplicate", kind=kind,
                                     key=key))
        seen.setdefault((kind, key), i)
        stated = item.get("content_hash")
        if stated is not None and stated != specs.content_hash(item["content"]):
            problems.append(_problem(f"{ptr}/content_hash", "the content does not match its "
                                     "hash; if the content was edited on purpose, remove "
                                     "content_hash", "hash_mismatch", kind=kind, key=key))
    if problems:
        return problems
    return _check_semantics(session, items)


def _check_semantics(session: Session, items: list[dict[str, Any]]) -> list[SpecProblem]:
    models = {it["key"]: it["content"] for it in items if it["kind"] == spec_kinds.FACTOR_MODEL}
    resolver = ModelResolver(session, models)
    order = {k.name: n for n, k in enumerate(spec_kinds.kinds())}
    problems: list[SpecProblem] = []
    broken_models: set[str] = set()
    # Dependency order: a preset is only checked against a model that is itself valid.
    for i in sorted(range(len(items)), key=lambda n: order[items[n]["kind"]]):
        kind, key, content = items[i]["kind"], items[i]["key"], items[i]["content"]
        spec_kind = spec_kinds.get(kind)
        assert spec_kind is not None  # checked above
        if spec_kind.depends_on and resolver.key_for(key) in broken_models:
            continue
        issues = spec_kind.validate(content, resolver, key)
        if issues and kind == spec_kinds.FACTOR_MODEL:
            broken_models.add(key)
        base = pointer("specs", i, "content")
        problems += [_problem(base + issue.pointer, issue.message, issue.code, issue.column,
                              kind, key) for issue in issues]
    if problems:
        return problems
    # Active specs the bundle leaves alone must still fit the models it brings.
    bundled = {(it["kind"], it["key"]) for it in items}
    for spec in specs.active_versions(session):
        spec_kind = spec_kinds.get(spec.kind)
        if (spec.kind, spec.key) in bundled or spec_kind is None or not spec_kind.depends_on:
            continue
        if resolver.key_for(spec.key) not in models:
            continue
        for issue in spec_kind.validate(spec.content, resolver, spec.key):
            problems.append(_problem(issue.pointer, f"the active {spec.kind}/{spec.key} (not in "
                                     f"the bundle) would be invalid: {issue.message}",
                                     issue.code, issue.column, spec.kind, spec.key))
    return problems


def import_bundle(session: Session, bundle: Any, actor: User | None,
                  remote_addr: str | None = None) -> list[ImportedSpec]:
    """Validate a parsed bundle, then activate its contents in one transaction.

    Raises :class:`BundleError` listing every problem; nothing is written then.
    """
    if isinstance(bundle, str | bytes):
        bundle = parse(bundle)
    problems = check_bundle(session, bundle)
    if problems:
        raise BundleError(problems)
    order = {k.name: n for n, k in enumerate(spec_kinds.kinds())}
    items = sorted(bundle["specs"], key=lambda it: order[it["kind"]])
    done: list[ImportedSpec] = []
    with unit_of_work(session):
        for item in items:
            done.append(_apply(session, item, actor, remote_addr))
        audit.record(session, actor, "import_config_bundle", "config", None,
                     after={"specs": [f"{d.kind}/{d.key}@v{d.version}:{d.action}" for d in done]},
                     remote_addr=remote_addr)
    return done


def _apply(session: Session, item: dict[str, Any], actor: User | None,
           remote_addr: str | None) -> ImportedSpec:
    kind, key, content = item["kind"], item["key"], item["content"]
    digest = specs.content_hash(content)
    active = specs.active_version(session, kind, key)
    if active is not None and active.content_hash == digest:
        return ImportedSpec(kind, key, "unchanged", active.version)
    # Versions are immutable, so an earlier version with this very content is reused.
    same = session.scalar(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == key, SpecVersion.content_hash == digest)
        .order_by(SpecVersion.version.desc()).limit(1))
    action = "activated"
    if same is None:
        same = specs.stage_version(session, kind, key, content, actor, IMPORT_NOTE, remote_addr)
        action = "created"
    specs.stage_activation(session, same, actor, remote_addr)
    return ImportedSpec(kind, key, action, same.version)
