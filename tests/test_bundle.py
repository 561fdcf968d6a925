"""The whole configuration as one bundle: export, validated import, round trips (in the
service and through `quotaflow config export|import` against a fresh database)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotaflow.services import bundle as bundle_service
from quotaflow.services import spec_kinds
from quotaflow.services import specs as spec_service
from quotaflow.services.bundle import BundleError, export_bundle, import_bundle
from quotaflow.store import db
from quotaflow.store.models import AuditEntry, SpecVersion, User

QUOTAFLOW = [sys.executable, "-m", "quotaflow.cli"]
SEED = Path(__file__).resolve().parents[1] / "quotaflow" / "seed_data" / "specs"


def seed_spec(name: str) -> dict:
    return json.loads((SEED / f"{name}.json").read_text(encoding="utf-8"))


def active_config(session) -> dict[tuple[str, str], tuple[str, object]]:
    return {(s.kind, s.key): (s.content_hash, s.content) for s in spec_service.active_versions(session)}


def counts(session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(SpecVersion)),
            session.scalar(select(func.count()).select_from(AuditEntry)))


def replaced(kind: str, content: dict) -> dict:
    """A different, still valid content of a known kind."""
    other = copy.deepcopy(content)
    other["version"] = content.get("version", 1) + 100
    other["description"] = "replaced"
    return other


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def hrbp(session) -> User:
    return session.scalar(select(User).where(User.username == "hrbp"))


def test_export_lists_every_active_spec_with_version_and_hash(session) -> None:
    bundle = export_bundle(session)
    assert (bundle["format"], bundle["format_version"]) == ("quotaflow-config-bundle", 1)
    listed = {(s["kind"], s["key"]): s for s in bundle["specs"]}
    known = {k.name for k in spec_kinds.kinds()}
    for spec in spec_service.active_versions(session):
        if spec.kind not in known:
            assert (spec.kind, spec.key) not in listed  # cannot be checked on import
            continue
        item = listed[spec.kind, spec.key]
        assert (item["version"], item["content_hash"], item["content"]) == (
            spec.version, spec.content_hash, spec.content)
    kinds = [s["kind"] for s in bundle["specs"]]
    assert kinds.index("factor_model") < kinds.index("scenario_presets")
    assert json.loads(bundle_service.dumps(bundle)) == bundle


def test_export_replace_everything_import_restores_the_configuration(session, hrbp) -> None:
    exported = json.loads(bundle_service.dumps(export_bundle(session)))
    original = active_config(session)
    # Replace every active spec of the kinds this test knows with other, valid content.
    for item in exported["specs"]:
        if item["kind"] in ("factor_model", "scenario_presets", "risk_rules"):
            spec_service.save_version(session, item["kind"], item["key"],
                                      replaced(item["kind"], item["content"]), hrbp,
                                      "replaced by the round-trip test", activate=True)
    assert active_config(session) != original

    done = import_bundle(session, exported, hrbp, "10.1.2.3")
    session.expire_all()
    assert active_config(session) == original
    actions = {(d.kind, d.key): d.action for d in done}
    assert actions[("factor_model", "default")] == "activated"  # the earlier version, reused
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "import_config_bundle")
                           .order_by(AuditEntry.id.desc()).limit(1))
    assert (entry.actor_name, entry.remote_addr) == ("hrbp", "10.1.2.3")

    again = import_bundle(session, exported, hrbp)
    assert {d.action for d in again} == {"unchanged"}


def test_a_bundle_with_an_error_writes_nothing(session, hrbp) -> None:
    exported = export_bundle(session)
    bad = copy.deepcopy(exported)
    model_at = next(i for i, s in enumerate(bad["specs"]) if s["kind"] == "factor_model")
    bad["specs"][model_at]["content"]["weights"]["product_fit"] = 5
    del bad["specs"][model_at]["content_hash"]
    presets_at = next(i for i, s in enumerate(bad["specs"]) if s["kind"] == "scenario_presets")
    bad["specs"][presets_at]["content"]["default"] = "aggressive"
    del bad["specs"][presets_at]["content_hash"]
    before, config = counts(session), active_config(session)
    with pytest.raises(BundleError) as caught:
        import_bundle(session, bad, hrbp)
    pointers = {(p.issue.pointer, p.issue.code, p.kind) for p in caught.value.problems}
    assert (f"/specs/{model_at}/content/weights", "weights_total", "factor_model") in pointers
    assert counts(session) == before
    assert active_config(session) == config


def test_models_are_checked_first_and_presets_against_the_bundled_model(session, hrbp) -> None:
    key = "t-bundle"
    model = seed_spec("factor_model")
    model["fields"].append({"name": "cross_border", "type": "number", "min": 0, "max": 10})
    model["factors"].append({"key": "cross_border", "fields": ["cross_border"],
                             "expression": "cross_border", "normalisation": "score"})
    model["weights"] = {**model["weights"], "historical_performance": 20, "cross_border": 10}
    presets = seed_spec("scenario_presets")
    presets["presets"][0]["weight_tilt"] = {"cross_border": 5, "historical_performance": -5}
    # Presets first in the file: they still see the bundle's model, not the default one.
    bundle = {"format": "quotaflow-config-bundle", "format_version": 1, "specs": [
        {"kind": "scenario_presets", "key": key, "content": presets},
        {"kind": "factor_model", "key": key, "content": model},
    ]}
    done = import_bundle(session, bundle, hrbp)
    assert [(d.kind, d.action, d.version) for d in done] == [
        ("factor_model", "created", 1), ("scenario_presets", "created", 1)]
    assert spec_service.active_version(session, "scenario_presets", key).version == 1

    # A model that would break its (unbundled) active presets is refused.
    smaller = copy.deepcopy(model)
    smaller["factors"] = [f for f in smaller["factors"] if f["key"] != "cross_border"]
    smaller["weights"].pop("cross_border")
    smaller["weights"]["historical_performance"] = 30
    with pytest.raises(BundleError) as caught:
        import_bundle(session, {"format": "quotaflow-config-bundle", "format_version": 1,
                                "specs": [{"kind": "factor_model", "key": key,
                                           "content": smaller}]}, hrbp)
    problem = caught.value.problems[0]
    assert (problem.kind, problem.issue.pointer, problem.issue.code) == (
        "scenario_presets", "/presets/0/weight_tilt/cross_border", "unknown_factor")


@pytest.mark.parametrize(("mutate", "pointer", "code"), [
    (lambda b: b.update(format="zip"), "/format", "schema.const"),
    (lambda b: b["specs"][0].update(kind="workflow"), "/specs/0/kind", "unknown_kind"),
    (lambda b: b["specs"][0].update(key="Not A Key"), "/specs/0/key", "bad_key"),
    (lambda b: b["specs"][0].update(content_hash="0" * 64), "/specs/0/content_hash", "hash_mismatch"),
    (lambda b: b["specs"].append(copy.deepcopy(b["specs"][0])), "/specs/{last}", "duplicate"),
    (lambda b: b["specs"][0].update(extra=1), "/specs/0", "schema.additionalProperties"),
])
def test_bundle_structure_problems_are_named(session, hrbp, mutate, pointer, code) -> None:
    bundle = export_bundle(session)
    mutate(bundle)
    before = counts(session)
    with pytest.raises(BundleError) as caught:
        import_bundle(session, bundle, hrbp)
    expected = pointer.format(last=len(bundle["specs"]) - 1)
    assert (expected, code) in {(p.issue.pointer, p.issue.code) for p in caught.value.problems}
    assert counts(session) == before


def test_text_that_is_not_json_is_refused_with_its_line() -> None:
    with pytest.raises(BundleError) as caught:
        bundle_service.parse('{\n  "format": ,\n}')
    issue = caught.value.problems[0].issue
    assert issue.code == "not_json"
    assert "line 2" in issue.message


@pytest.mark.parametrize("text", ['{"format": "\\ud800"}', b'{"format": "\xed\xa0\x80"}',
                                  b"\xff\xfe{\x00}\x00"])
def test_text_that_is_not_unicode_is_refused_not_a_crash(text: str | bytes) -> None:
    with pytest.raises(BundleError) as caught:
        bundle_service.parse(text)
    assert caught.value.problems[0].issue.code == "not_json"


# -- the command line, against its own databases -------------------------------------------------

def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*QUOTAFLOW, *args], env=env, capture_output=True, text=True, timeout=180)


def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTAFLOW_")}
    env["QUOTAFLOW_INSTANCE_PATH"] = str(tmp_path / "instance")
    env["QUOTAFLOW_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def empty_database_url(request, tmp_path: Path) -> str:
    if os.environ.get("QUOTAFLOW_TEST_BACKEND") == "postgresql":
        return request.getfixturevalue("fresh_postgres_url")
    return f"sqlite:///{tmp_path / 'fresh.db'}"


def test_cli_export_then_import_into_an_empty_database(app, database_url, empty_database_url,
                                                       tmp_path: Path) -> None:
    source = cli_env(tmp_path, database_url)
    target = cli_env(tmp_path, empty_database_url)
    exported = tmp_path / "bundle.json"
    result = run(["config", "export", str(exported)], source)
    assert result.returncode == 0, result.stderr
    bundle = json.loads(exported.read_text(encoding="utf-8"))
    assert {s["kind"] for s in bundle["specs"]} >= {"factor_model", "scenario_presets", "risk_rules"}

    assert run(["db", "upgrade"], target).returncode == 0
    bad = copy.deepcopy(bundle)
    bad["specs"][0]["content"]["weights"] = {"historical_performance": 50}
    del bad["specs"][0]["content_hash"]
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad), encoding="utf-8")
    refused = run(["config", "import", str(bad_file)], target)
    assert refused.returncode != 0
    assert "/specs/0/content/weights" in refused.stderr
    assert "nothing was imported" in refused.stderr
    empty = run(["config", "export", "-"], target)
    assert json.loads(empty.stdout)["specs"] == []

    imported = run(["config", "import", str(exported)], target)
    assert imported.returncode == 0, imported.stderr
    assert "factor_model/default: v1 created" in imported.stdout
    again = run(["config", "export", "-"], target)
    restored = json.loads(again.stdout)["specs"]

    def config(specs: list[dict]) -> dict:
        return {(s["kind"], s["key"]): (s["content_hash"], s["content"]) for s in specs}

    assert config(restored) == config(bundle["specs"])


def test_cli_import_names_a_missing_file(tmp_path: Path, empty_database_url) -> None:
    result = run(["config", "import", str(tmp_path / "nope.json")], cli_env(tmp_path, empty_database_url))
    assert result.returncode != 0
    assert "nope.json" in result.stderr
