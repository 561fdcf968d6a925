"""Two people acting on one instance at the same moment, each in a session (and a
connection) of their own, on the current backend: the compare-and-swap on ``revision``
lets exactly one decision through; the other is refused with "already_decided", or,
when both decisions count (a countersign), is applied after a re-read."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from quotaflow.flows import Action
from quotaflow.services import flows, registry, specs
from quotaflow.services.flows import FlowRefused
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.flow_models import FlowInstance, FlowTask

SUBJECT = "flow_test"

# Threads race in sessions of their own: each test commits for real, on a database of its own.
pytestmark = pytest.mark.committing


def _flow(key: str, users: list[str], mode: str) -> dict[str, Any]:
    return {"id": key, "version": 1, "fields": {"amount": "number"}, "nodes": [
        {"id": "start", "kind": "start", "next": "decide"},
        {"id": "decide", "kind": "approval", "assignees": [{"user": u} for u in users],
         "mode": mode, "next": "apply"},
        {"id": "apply", "kind": "action", "action": "apply_adjustment", "next": "done"},
        {"id": "done", "kind": "end"}]}


@pytest.fixture
def engine(app):
    with app.app_context():
        yield db.engine
        db.session.rollback()


@pytest.fixture
def applied(monkeypatch) -> list[int]:
    calls: list[int] = []
    lock = threading.Lock()

    def handler(session, instance) -> None:
        with lock:
            calls.append(instance.id)

    monkeypatch.setitem(registry._loaded, registry.FLOW_ACTIONS["apply_adjustment"], handler)
    return calls


@pytest.fixture
def lined_up(monkeypatch):
    """Make both threads compute their step from the same revision before either writes."""
    barrier = threading.Barrier(2, timeout=20)
    local = threading.local()
    real_step = flows.step

    def step(*args: Any, **kwargs: Any) -> Any:
        result = real_step(*args, **kwargs)
        if getattr(local, "armed", False):  # the first step of a racing thread
            local.armed = False
            barrier.wait()
        return result

    monkeypatch.setattr(flows, "step", step)
    return local


def _start(engine, key: str, users: list[str], mode: str) -> int:
    with Session(engine) as session:
        specs.activate(session, specs.create_version(session, "flow", key, _flow(key, users, mode),
                                                     None, "test"), None)
        instance = flows.start(session, key, unit=q.unit_by_code(session, "EAST"),
                               initiator=q.user_by_username(session, "head.east"),
                               data={"amount": 1.0}, subject_type=SUBJECT,
                               subject_id=1)
        session.commit()
        return instance.id


def _race(engine, lined_up, instance_id: int, usernames: list[str]) -> list[Any]:
    """Each username approves in its own thread and session; returns "ok" or the refusal."""
    results: list[Any] = [None] * len(usernames)

    def run(index: int, username: str) -> None:
        lined_up.armed = True
        with Session(engine) as session:
            try:
                actor = q.user_by_username(session, username)
                flows.act(session, instance_id, actor, Action("approve"))
                session.commit()
                results[index] = "ok"
            except FlowRefused as exc:
                session.rollback()
                results[index] = exc
            except Exception as exc:  # surfaced in the assertion below
                session.rollback()
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i, u)) for i, u in enumerate(usernames)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _instance(engine, instance_id: int) -> tuple[FlowInstance, list[str]]:
    with Session(engine) as session:
        instance = session.get(FlowInstance, instance_id)
        statuses = session.scalars(select(FlowTask.status).where(
            FlowTask.instance_id == instance_id).order_by(FlowTask.task_id)).all()
        session.expunge(instance)
        return instance, list(statuses)


def _one_winner(results: list[Any]) -> FlowRefused:
    assert results.count("ok") == 1, results
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, FlowRefused), loser
    assert loser.code == "already_decided", (loser.code, loser.message)
    return loser


def test_same_single_approver_task_twice_at_once(engine, applied, lined_up) -> None:
    instance_id = _start(engine, "flowtest-race-single", ["cfo"], "single")
    results = _race(engine, lined_up, instance_id, ["cfo", "cfo"])
    _one_winner(results)
    instance, statuses = _instance(engine, instance_id)
    assert (instance.status, instance.revision) == ("approved", 2)
    assert statuses == ["approved"]
    assert applied == [instance_id]  # the action ran once
    assert [e["action"] for e in instance.state["history"]].count("approve") == 1


def test_two_approvers_of_an_any_one_node_at_once(engine, applied, lined_up) -> None:
    instance_id = _start(engine, "flowtest-race-any", ["cfo", "ceo"], "any")
    results = _race(engine, lined_up, instance_id, ["cfo", "ceo"])
    loser = _one_winner(results)
    assert loser.params["by"] == "others"
    instance, statuses = _instance(engine, instance_id)
    assert (instance.status, instance.revision) == ("approved", 2)
    assert sorted(statuses) == ["approved", "cancelled"]
    assert applied == [instance_id]


def test_both_countersigners_at_once_both_count(engine, applied, lined_up) -> None:
    instance_id = _start(engine, "flowtest-race-all", ["cfo", "ceo"], "all")
    results = _race(engine, lined_up, instance_id, ["cfo", "ceo"])
    assert results == ["ok", "ok"]
    instance, statuses = _instance(engine, instance_id)
    assert (instance.status, instance.revision) == ("approved", 3)
    assert statuses == ["approved", "approved"]
    assert applied == [instance_id]
