"""The state changes pages make, each one use case on the request's :class:`Context`.

Every function here runs in one unit of work (``@use_case``: committed when it returns,
rolled back on any error) and acts as the context's user, from the context's address.
They delegate to the services that hold the rules; what those services refuse they
raise, and nothing of the change is kept. The API and the CLI may call the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from quotaflow.services import (
    actuals,
    bundle,
    confirmation,
    emergency,
    factor_builder,
    org,
    org_import,
    plans,
    specs,
    spreadsheets,
    uploads,
    whatif,
)
from quotaflow.services.auth import MAX_DELAY_SECONDS, SignInResult, actor, sign_in
from quotaflow.services.uow import Context, use_case

# -- signing in and the org browser ---------------------------------------------------------


@use_case
def sign_in_with_password(ctx: Context, username: str, password: str, *, max_failures: int,
                          window_seconds: int, max_delay_seconds: int = MAX_DELAY_SECONDS,
                          known_device: bool = False) -> SignInResult:
    """Check a password at ``ctx.now``; the attempt is recorded (and committed) whatever the
    answer, unless backoff refuses it unchecked (see :func:`auth.sign_in`)."""
    return sign_in(ctx.session, username, password, ctx.remote_addr or "unknown",
                   max_failures, window_seconds, now=ctx.now,
                   max_delay_seconds=max_delay_seconds, known_device=known_device)


@use_case
def set_attributes(ctx: Context, unit: Any, period: Any,
                   values: Mapping[str, float | None], source: str = "org") -> org.SavedInputs:
    """Store a unit's inputs for a period (audited), or, once its plan is published,
    send the changes of the writer's own target for approval (``pending_flow_id``)."""
    return org.save_inputs(ctx.session, actor(ctx), unit, period, values, ctx.remote_addr,
                           source=source)


# -- files --------------------------------------------------------------------------------


@use_case
def store_upload(ctx: Context, unit: Any, filename: str, stream: BinaryIO, *,
                 storage_dir: Path, max_bytes: int) -> Any:
    return uploads.store_upload(ctx.session, actor(ctx), unit, filename, stream,
                                storage_dir=storage_dir, max_bytes=max_bytes,
                                remote_addr=ctx.remote_addr)


@use_case
def ingest_actuals(ctx: Context, payload: Any) -> Any:
    """Ingest a JSON list of actuals (the API), all or nothing, within the write scope."""
    return actuals.ingest_records(ctx.session, actor(ctx), ctx.principal, payload,
                                  remote_addr=ctx.remote_addr)


@use_case
def import_actuals(ctx: Context, data: bytes, filename: str, *,
                   max_bytes: int | None = None) -> Any:
    return actuals.import_file(ctx.session, actor(ctx), ctx.principal, data, filename,
                               max_bytes=max_bytes, remote_addr=ctx.remote_addr)


@use_case
def import_inputs(ctx: Context, data: bytes, filename: str, period_code: str | None = None,
                  *, texts: Any = None, max_bytes: int | None = None) -> Any:
    return spreadsheets.import_inputs(ctx.session, actor(ctx), ctx.principal, data, filename,
                                      period_code, texts=texts, max_bytes=max_bytes,
                                      remote_addr=ctx.remote_addr)


@use_case
def import_history(ctx: Context, data: bytes, filename: str, *,
                   max_bytes: int | None = None) -> Any:
    return org_import.import_history(ctx.session, actor(ctx), ctx.principal, data, filename,
                                     max_bytes=max_bytes, remote_addr=ctx.remote_addr)


@use_case
def import_org_units(ctx: Context, data: bytes, filename: str, *, people: bool = False,
                     max_bytes: int | None = None) -> Any:
    return org_import.import_org_units(ctx.session, actor(ctx), ctx.principal, data, filename,
                                       people=people, max_bytes=max_bytes,
                                       remote_addr=ctx.remote_addr)


# -- plans, confirmation, emergency, what-if --------------------------------------------------


@use_case
def create_plan(ctx: Context, period: Any, scenario: str, total: Any, note: str | None) -> Any:
    return plans.create_plan(ctx.session, actor(ctx), period, scenario, total, note,
                             remote_addr=ctx.remote_addr)


@use_case
def publish_plan(ctx: Context, plan: Any) -> Any:
    return confirmation.publish(ctx.session, plan, actor(ctx), remote_addr=ctx.remote_addr)


@use_case
def accept(ctx: Context, item_id: int, *, version: int | None = None) -> Any:
    return confirmation.accept(ctx.session, item_id, actor(ctx), version=version,
                               remote_addr=ctx.remote_addr)


@use_case
def accept_many(ctx: Context, answers: Sequence[tuple[int, int | None]]) -> list[Any]:
    return confirmation.accept_many(ctx.session, answers, actor(ctx),
                                    remote_addr=ctx.remote_addr)


@use_case
def submit_appeal(ctx: Context, item_id: int, *, requested: Any, reason: Any,
                  evidence: Sequence[int], version: int | None = None) -> Any:
    return confirmation.submit_appeal(ctx.session, item_id, actor(ctx), requested=requested,
                                      reason=reason, evidence=evidence, version=version,
                                      remote_addr=ctx.remote_addr)


@use_case
def request_emergency(ctx: Context, period: Any, *, reason: Any, cities: Any = None,
                      unit_codes: Any = None, total: Any = None) -> Any:
    return emergency.submit(ctx.session, period, actor(ctx), reason=reason, cities=cities,
                            unit_codes=unit_codes, total=total, remote_addr=ctx.remote_addr)


@use_case
def whatif_snapshot(ctx: Context, unit: Any, plan: Any, *, inputs: Any, weights: Any,
                    storage_dir: Path) -> Any:
    """Run the posted what-if and keep it as evidence (an upload of the unit)."""
    box = whatif.run(ctx.session, unit, plan, inputs=inputs, weights=weights)
    return whatif.snapshot_upload(ctx.session, box, actor(ctx), storage_dir=storage_dir,
                                  remote_addr=ctx.remote_addr)


# -- configuration ------------------------------------------------------------------------


@use_case
def save_model_draft(ctx: Context, doc: Mapping[str, Any], note: str) -> Any:
    return factor_builder.save_draft(ctx.session, actor(ctx), doc, note, ctx.remote_addr)


@use_case
def activate_spec(ctx: Context, kind: str, key: str, version: int) -> Any:
    return specs.activate_version(ctx.session, kind, key, version, actor(ctx), ctx.remote_addr)


@use_case
def save_spec(ctx: Context, kind: str, key: str, content: Any, note: str | None = None, *,
              activate: bool = False) -> Any:
    return specs.save_version(ctx.session, kind, key, content, actor(ctx), note,
                              activate=activate, remote_addr=ctx.remote_addr)


@use_case
def import_bundle(ctx: Context, parsed: Any) -> Any:
    return bundle.import_bundle(ctx.session, parsed, actor(ctx), ctx.remote_addr)
