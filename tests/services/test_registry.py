"""Flow handlers are declared once (services/registry.py), checked at start-up and when a
flow spec is saved."""

from __future__ import annotations

import pytest

from quotaflow.services import registry, specs
from quotaflow.services.specs import SpecValidationError
from quotaflow.store import db


def flow_with_action(key: str, action: str) -> dict:
    return {"id": key, "version": 1, "fields": {"amount": "number"},
            "nodes": [{"id": "start", "kind": "start", "next": "ok"},
                      {"id": "ok", "kind": "approval", "assignees": [{"user": "cfo"}],
                       "next": "run"},
                      {"id": "run", "kind": "action", "action": action, "next": "done"},
                      {"id": "done", "kind": "end"}]}


def test_every_declared_handler_imports() -> None:
    registry.check()
    for name in registry.FLOW_ACTIONS:
        assert callable(registry.flow_action(name))
    assert registry.flow_action("launch_rockets") is None


def test_a_flow_naming_an_undeclared_action_is_refused_when_saved(app) -> None:
    with app.app_context():
        session = db.session
        with pytest.raises(SpecValidationError) as info:
            specs.save_version(session, "flow", "registry-test",
                               flow_with_action("registry-test", "launch_rockets"), None,
                               "test", activate=True)
        found = [(p.issue.pointer, p.issue.code) for p in info.value.problems]
        assert found == [("/nodes/2/action", "unknown_action")]
        assert specs.latest_version(session, "flow", "registry-test") is None
        # Every declared action is accepted.
        for name in sorted(registry.FLOW_ACTIONS):
            assert specs.validate_content(session, "flow", "registry-test",
                                          flow_with_action("registry-test", name)) == []


@pytest.mark.parametrize("ref", ["quotaflow.services.no_such_module:run",
                                 "quotaflow.services.flow_actions:no_such_function",
                                 "quotaflow.services.flow_actions:HR_TOPIC",
                                 "no colon here"])
def test_start_up_fails_for_a_bad_declared_handler(monkeypatch, tmp_path, ref: str) -> None:
    from quotaflow import create_app

    monkeypatch.setenv("QUOTAFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setitem(registry.FLOW_ACTIONS, "broken_action", ref)
    with pytest.raises(registry.RegistryError) as info:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TESTING": True,
                    "SECRET_KEY": "test"})
    assert "broken_action" in str(info.value) and ref in str(info.value)


def test_start_up_fails_for_a_bad_end_handler(monkeypatch, tmp_path) -> None:
    from quotaflow import create_app

    monkeypatch.setenv("QUOTAFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setitem(registry.FLOW_END_HANDLERS, "appeal",
                        ("quotaflow.services.confirmation:on_appeal_ended",))
    with pytest.raises(registry.RegistryError, match="on_appeal_ended"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TESTING": True,
                    "SECRET_KEY": "test"})


def test_start_up_fails_for_a_spec_kind_without_its_schema(monkeypatch, tmp_path) -> None:
    from quotaflow import create_app
    from quotaflow.services import spec_kinds

    monkeypatch.setenv("QUOTAFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setitem(spec_kinds._KINDS, "orphan",
                        spec_kinds.SpecKind("orphan", "no-such-schema", lambda *a: []))
    with pytest.raises(registry.RegistryError, match="no-such-schema"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TESTING": True,
                    "SECRET_KEY": "test"})
