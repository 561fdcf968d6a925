"""The OpenAPI 3.1 document for /api/v1. Later features add their paths here."""

from __future__ import annotations

from typing import Any

from quotaflow.flows.permitted import ORDER as ACTION_ORDER
from quotaflow.services import spec_kinds

ERROR = {"$ref": "#/components/responses/Error"}
CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Org unit code, e.g. EAST or P0001"}
PERIOD = {"name": "period", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "Period code such as 2026Q4; defaults to the planning period "
                         "(GET /planning-period)"}


def _get(summary: str, schema: dict[str, Any], *, params: list[Any] | None = None) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "401": ERROR, "403": ERROR, "404": ERROR,
        },
    }


def _post(summary: str, schema: dict[str, Any] | None, *, body: dict[str, Any] | None = None,
          params: list[Any] | None = None, status: str = "200",
          errors: tuple[str, ...] = ("400", "401", "403", "404", "409", "422"),
          content_type: str = "application/json") -> dict[str, Any]:
    """A write: its JSON (or multipart) body, its answer and the refusals it may give."""
    out: dict[str, Any] = {"summary": summary, "parameters": params or []}
    if body is not None:
        out["requestBody"] = {"required": True, "content": {content_type: {"schema": body}}}
    answer: dict[str, Any] = {"description": "OK"}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    out["responses"] = {status: answer, **{code: ERROR for code in errors}}
    return out


KIND = {"name": "kind", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Spec kind: " + ", ".join(k.name for k in spec_kinds.kinds())}
KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "Spec key, e.g. default"}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer"},
           "description": "Version number (1, 2, ...)"}


def _spec_paths() -> dict[str, Any]:
    """Specs: list, versions, one version, create a version (validated), activate."""
    version_ref = {"$ref": "#/components/schemas/SpecVersion"}
    invalid = {"description": 'Invalid spec: error code "invalid_spec", details.issues lists '
               "each problem with its JSON pointer, message, code and column",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "/specs": {"get": _get("Every spec (kind and key) with its active version (admin, HRBP)",
                               {"type": "object"})},
        "/specs/{kind}/{key}": {"get": _get("A spec's versions, newest first", {
            "type": "object", "properties": {"versions": {"type": "array", "items": version_ref}}},
            params=[KIND, KEY])},
        "/specs/{kind}/{key}/versions/{version}": {"get": _get(
            "One version with its content", version_ref, params=[KIND, KEY, VERSION])},
        "/specs/{kind}/{key}/versions": {"post": {
            "summary": "Save a new version (checked against the schema and semantics first)",
            "parameters": [KIND, KEY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["content"],
                "properties": {"content": {}, "note": {"type": "string", "maxLength": 500},
                               "activate": {"type": "boolean", "default": False}}}}}},
            "responses": {
                "201": {"description": "The saved version",
                        "content": {"application/json": {"schema": version_ref}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR,
                "409": ERROR, "422": invalid,
            },
        }},
        "/specs/{kind}/{key}/versions/{version}/activate": {"post": {
            "summary": "Activate a version (an earlier one rolls back); the previous one retires",
            "parameters": [KIND, KEY, VERSION],
            "responses": {
                "200": {"description": "The activated version",
                        "content": {"application/json": {"schema": version_ref}}},
                "401": ERROR, "403": ERROR, "404": ERROR, "409": ERROR, "422": invalid,
            },
        }},
    }


PLAN_ID = {"name": "plan_id", "in": "path", "required": True, "schema": {"type": "integer"},
           "description": "Plan id (as returned by POST /plans)"}
_RISK = {"type": "object", "properties": {
    "rule": {"type": "string"}, "severity": {"enum": ["info", "low", "medium", "high"]},
    "message_en": {"type": "string"}, "message_zh": {"type": "string"}}}
_PLAN = {"type": "object", "properties": {
    "id": {"type": "integer"}, "number": {"type": "integer"}, "period": {"type": "string"},
    "scenario": {"type": "string"}, "scenario_label_en": {"type": ["string", "null"]},
    "scenario_label_zh": {"type": ["string", "null"]},
    "status": {"enum": ["draft", "published", "superseded"]},
    "company_total": {"type": "integer"}, "requested_total": {"type": "integer"},
    "planned_total": {"type": "integer"}, "note": {"type": ["string", "null"]},
    "created_by": {"type": ["string", "null"]}, "created_at": {"type": "string"},
    "spec_versions": {"type": "object", "description": "Ids of the pinned spec versions",
                      "properties": {k: {"type": ["integer", "null"]} for k in
                                     (spec_kinds.FACTOR_MODEL, spec_kinds.SCENARIO_PRESETS,
                                      spec_kinds.RISK_RULES)}},
    "summary": {"type": "object", "description": "Requested and planned totals, weights, "
                "plan-level risks (only for callers who can read the company), infeasibilities "
                "with shortfalls (within the caller's scope)"}}}
_PLAN_UNIT = {"type": "object", "properties": {
    "code": {"type": "string"}, "name_en": {"type": "string"}, "name_zh": {"type": "string"},
    "level": {"type": "string"}, "parent": {"type": ["string", "null"]},
    "target": {"type": "integer"}, "lower": {"type": ["number", "null"]},
    "upper": {"type": ["number", "null"]}, "locked": {"type": "boolean"},
    "factor_amounts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "bounds_adjustment": {"type": "integer"}, "rounding_adjustment": {"type": "integer"},
    "risks": {"type": "array", "items": _RISK}}}


def _plan_paths() -> dict[str, Any]:
    """Plans: create from a period, scenario and total; list; read; explain one unit."""
    plan_with_units = {"allOf": [_PLAN, {"type": "object", "properties": {
        "factors": {"type": "array", "items": {"type": "string"}},
        "units_total": {"type": "integer"}, "offset": {"type": "integer"},
        "limit": {"type": "integer"}, "next_offset": {"type": ["integer", "null"]},
        "units": {"type": "array", "items": _PLAN_UNIT}}}]}
    explanation = {"type": "object", "description": "One unit's target: factor amounts "
                   "(weight, share among siblings, yuan), then bounds and rounding adjustments, "
                   "adding up exactly to the target; its children's targets; its risks",
                   "properties": {
                       "target": {"type": "integer"}, "adds_up": {"type": "boolean"},
                       "factors": {"type": "array", "items": {"type": "object"}},
                       "bounds_adjustment": {"type": "integer"},
                       "rounding_adjustment": {"type": "integer"},
                       "children": {"type": "array", "items": {"type": "object"}},
                       "risks": {"type": "array", "items": _RISK}}}
    offset = {"name": "offset", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 0, "default": 0}}
    limit = {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}
    return {
        "/plans": {
            "get": _get("Plans, newest period first", {"type": "object", "properties": {
                "plans": {"type": "array", "items": _PLAN}}}, params=[PERIOD]),
            "post": {
                "summary": "Compute and save a plan from the active factor model, a scenario and "
                           "a company total (plan.create)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["scenario", "total"],
                    "properties": {
                        "period": {"type": "string", "description": "Defaults to the planning period"},
                        "scenario": {"type": "string", "examples": ["balanced"]},
                        "total": {"type": "number", "exclusiveMinimum": 0,
                                  "description": "Company total in yuan"},
                        "note": {"type": "string", "maxLength": 2000}}}}}},
                "responses": {
                    "201": {"description": "The saved plan with its summary",
                            "content": {"application/json": {"schema": _PLAN}}},
                    "400": ERROR, "401": ERROR, "403": ERROR,
                    "422": {"description": "Bad input (details.pointer: /period, /scenario, "
                            "/total, /note) or data the model cannot run on (e.g. "
                            "missing_values, naming the field and units)",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/Error"}}}},
                },
            },
        },
        "/plans/{plan_id}": {"get": _get("A plan: summary and the unit rows within the "
                                         "caller's scope, in tree order", plan_with_units,
                                         params=[PLAN_ID, offset, limit])},
        "/plans/{plan_id}/units/{code}": {"get": _get(
            "How one unit's target was derived (from the plan's pinned model version)",
            explanation, params=[PLAN_ID, CODE])},
    }


INSTANCE_ID = {"name": "instance_id", "in": "path", "required": True,
               "schema": {"type": "integer"}, "description": "Flow instance id"}


def _flow_paths() -> dict[str, Any]:
    """Approval flows: my tasks, one instance, acting on it."""
    summary = {"type": "object", "properties": {
        "id": {"type": "integer"}, "flow": {"type": "string"},
        "flow_version": {"type": "integer"}, "flow_version_id": {"type": "integer"},
        "subject_type": {"type": "string"}, "subject_id": {"type": "integer"},
        "unit": {"type": "string"}, "initiator": {"type": "string"},
        "status": {"enum": ["draft", "running", "approved", "rejected", "withdrawn"]},
        "revision": {"type": "integer", "description": "Steps applied; send it back with an "
                     "action to be told when someone else acted first"},
        "current": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "object"}, "created_at": {"type": "string"},
        "updated_at": {"type": "string"}, "ended_at": {"type": ["string", "null"]}}}
    instance = {"allOf": [summary, {"type": "object", "properties": {
        "tasks": {"type": "array", "items": {"type": "object"}},
        "history": {"type": "array", "items": {"type": "object"},
                    "description": "Every action: who, when, what, at which node, comment"},
        "path": {"type": "array", "items": {"type": "string"}},
        "available_actions": {
            "type": "array", "items": {"enum": list(ACTION_ORDER)},
            "description": "What the caller may do next (the pages show the same buttons): "
            "an action listed here is accepted unless its arguments are wrong (an empty "
            "comment, a target not offered below, changes outside editable_fields) or the "
            "flow cannot move on (no_assignee, condition_failed); any other is refused"},
        "editable_fields": {"type": "array", "items": {"type": "string"},
                            "description": "Fields the caller may change: with \"edit\" "
                            "at their step, or with \"submit\" when the request was "
                            "returned to them"},
        "return_targets": {"type": "array", "items": {"type": "string"},
                           "description": "Where \"return\" may send the request: "
                           "\"initiator\" or an earlier step's node id"},
        "assignable": {"type": "array", "items": {"type": "string"},
                       "description": "Users \"transfer\" and \"add_approver\" may name; "
                       "never the initiator (separation of duties)"}}}]}
    task = {"type": "object", "properties": {
        "instance_id": {"type": "integer"}, "task_id": {"type": "integer"},
        "node": {"type": "string"}, "status": {"type": "string"},
        "due_at": {"type": ["string", "null"]}, "instance": summary}}
    refused = {"description": "Refused: error.code is the flow's reason, e.g. "
               "\"already_decided\" (409: someone else decided first), \"not_assignee\" "
               "(403), \"self_approval\" (403: the initiator approving their own request), "
               "\"initiator_as_approver\" (a transfer or added approver naming the "
               "initiator), \"not_your_turn\", \"too_late_to_withdraw\", "
               "\"unknown_action\" (422)",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "/tasks": {"get": _get("My pending approval tasks and the instances I started",
                               {"type": "object", "properties": {
                                   "tasks": {"type": "array", "items": task},
                                   "started": {"type": "array", "items": summary}}})},
        "/flows/{instance_id}": {"get": _get(
            "One flow instance: form data, tasks, history (initiator, approvers, overseers)",
            instance, params=[INSTANCE_ID])},
        "/flows/{instance_id}/actions": {"post": {
            "summary": "Act on a flow instance as the caller (initiator or approver)",
            "parameters": [INSTANCE_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "action": {"enum": ["approve", "reject", "return", "transfer",
                                        "add_approver", "comment", "urge", "withdraw", "edit",
                                        "submit"]},
                    "comment": {"type": "string", "maxLength": 2000},
                    "target": {"type": "string", "description": "transfer/add_approver: a "
                               "user name; return: \"initiator\" or an earlier node id"},
                    "position": {"enum": ["before", "after"]},
                    "changes": {"type": "object", "description": "edit/submit: field values"},
                    "revision": {"type": "integer"}}}}}},
            "responses": {
                "200": {"description": "The instance after the action",
                        "content": {"application/json": {"schema": instance}}},
                "400": ERROR, "401": ERROR, "403": refused, "404": ERROR, "409": refused,
                "422": refused},
        }},
    }


def _tracking_paths() -> dict[str, Any]:
    """During the quarter: actuals in (idempotent), alerts out, a unit's progress."""
    error_422 = {"description": 'Refused as a whole, nothing stored: error.code '
                 '"invalid_actuals", details.issues lists each problem with its JSON pointer '
                 '(e.g. /3/date), code and message',
                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    record = {"type": "object", "required": ["unit", "date", "value"],
              "additionalProperties": False, "properties": {
                  "unit": {"type": "string", "description": "Person unit code, e.g. P0001"},
                  "date": {"type": "string", "format": "date"},
                  "value": {"type": "number", "description": "Sales in yuan on that date"},
                  "source": {"type": "string", "maxLength": 64, "default": "api",
                             "description": "The sending system, e.g. crm"},
                  "source_id": {"type": "string", "maxLength": 128, "default": "",
                                "description": "The record's id in the source"}}}
    counts = {"type": "object", "properties": {
        "records": {"type": "integer"}, "inserted": {"type": "integer"},
        "updated": {"type": "integer", "description": "Same key, new value (audited)"},
        "unchanged": {"type": "integer", "description": "Replays of stored records"}}}
    alert = {"type": "object", "properties": {
        "id": {"type": "integer"}, "rule": {"type": "string"}, "unit": {"type": "string"},
        "level": {"type": "string"}, "period": {"type": "string"}, "week": {"type": "integer"},
        "severity": {"type": "string"}, "run": {"type": "integer"},
        "status": {"enum": ["open", "acknowledged", "resolved"]},
        "message_en": {"type": "string"}, "message_zh": {"type": "string"},
        "metrics": {"type": "object"},
        "remedies": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "priority": {"type": "number"},
            "message_en": {"type": "string"}, "message_zh": {"type": "string"}}}},
        "spec_versions": {"type": "object"}, "plan_id": {"type": ["integer", "null"]}}}
    week = {"name": "week", "in": "query", "required": False, "schema": {"type": "integer"},
            "description": "Week of the period (1..); default: the current week"}
    alert_id = {"name": "alert_id", "in": "path", "required": True,
                "schema": {"type": "integer"}}
    status = {"name": "status", "in": "query", "required": False,
              "schema": {"enum": ["open", "acknowledged", "resolved", "all"]}}
    return {
        "/actuals": {"post": {
            "summary": "Record results of persons by date (unit.write over them). Idempotent: "
                       "(unit, date, source, source_id) identifies a record; sending it again "
                       "answers 200 and counts it unchanged",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [{"type": "array", "items": record, "maxItems": 50000},
                          {"type": "object", "required": ["actuals"], "properties": {
                              "actuals": {"type": "array", "items": record}}}]}}}},
            "responses": {"200": {"description": "Stored (all of them)", "content": {
                "application/json": {"schema": counts}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "422": error_422},
        }},
        "/alerts": {"get": _get("Alerts of units in the caller's scope, newest week first "
                                "(those raised against a draft plan only for plan makers)",
                                {"type": "object", "properties": {
                                    "period": {"type": "string"},
                                    "alerts": {"type": "array", "items": alert}}},
                                params=[PERIOD, week, status])},
        "/alerts/{alert_id}/acknowledge": {"post": {
            "summary": "Acknowledge an open alert (unit.write over its unit)",
            "parameters": [alert_id],
            "responses": {"200": {"description": "The alert", "content": {
                "application/json": {"schema": alert}}},
                "401": ERROR, "403": ERROR, "404": ERROR}}},
        "/units/{code}/progress": {"get": _get(
            "A unit's progress at a week: target, actual, red line, gap, pace, streak, "
            "forecast with band; its weekly series and its children; where the targets "
            "(plan) and the curve come from. Targets come from a draft plan only for "
            "those who may create or publish plans; anyone else gets 404 "
            "no_published_plan until a plan is published", {"type": "object"},
            params=[CODE, PERIOD, week])},
    }


def _twin_paths() -> dict[str, Any]:
    """Twins of page actions: spreadsheets, the configuration bundle, what-if, and reads
    (alignment, HR export, a plan's .xlsx, the simulator, the appeal range check, the
    dashboards)."""
    binary = {"type": "string", "format": "binary"}
    fmt = {"name": "fmt", "in": "path", "required": True, "schema": {"enum": ["xlsx", "csv"]},
           "description": "xlsx (a workbook with README and input checks) or csv (UTF-8 with BOM)"}
    kind = {"name": "kind", "in": "path", "required": True,
            "schema": {"enum": ["org", "people", "history"]},
            "description": "org units, people (person-level units) or history (past results)"}
    download = {"200": {"description": "The file (Content-Disposition: attachment)", "content": {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": binary},
        "text/csv": {"schema": binary}}}, "401": ERROR, "403": ERROR, "404": ERROR}
    report = {"description": 'Refused as a whole, nothing stored: error.code "invalid_sheet", '
              "details.issues lists each problem as the page reports it (row, column letter, "
              "header, code, message in the caller's language), details.total counts them "
              "all, details.hidden those left off",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    upload = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {**binary, "description": ".xlsx or .csv"},
            "period": {"type": "string", "description": "inputs only: the period the file "
                       "is for (else the one written in the file)"}}}}}}
    counts = {"type": "object", "properties": {
        "filename": {"type": "string"}, "rows": {"type": "integer"},
        "sha256": {"type": "string"}}, "additionalProperties": {"type": ["integer", "string"]}}
    bundle = {"type": "object", "properties": {
        "format": {"type": "string"}, "format_version": {"type": "integer"},
        "exported_at": {"type": "string"},
        "specs": {"type": "array", "items": {"type": "object", "properties": {
            "kind": {"type": "string"}, "key": {"type": "string"},
            "version": {"type": "integer"}, "content_hash": {"type": "string"},
            "content": {}}}}}}
    whatif_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "plan": {"type": "integer", "description": "Plan id; default: the period's "
                     "latest published plan, else its latest plan"},
            "period": {"type": "string", "description": "Period code; default: the "
                       "planning period"},
            "inputs": {"type": "object", "description": 'Unit code -> {"<field>": value}: '
                       "only fields of the what-if policy, units below the unit; values "
                       "outside their limits are clipped (listed in \"clipped\")",
                       "additionalProperties": {"type": "object"}},
            "weights": {"type": "object", "description": "Factor key -> percent, within "
                        "the policy's band (balanced to 100)",
                        "additionalProperties": {"type": "number"}}}}}}}
    whatif = {"type": "object", "description": "The plan, the unit and its target, planned "
              "and shortfall, plan and what-if weights, the changed inputs, every unit of "
              "the subtree with its plan and what-if targets", "properties": {
                  "plan": {"type": "object"}, "unit": {"type": "object"},
                  "planned": {"type": "integer"}, "shortfall": {"type": "integer"},
                  "weight_band": {"type": "number"},
                  "weights": {"type": "array", "items": {"type": "object"}},
                  "weights_changed": {"type": "boolean"},
                  "changes": {"type": "array", "items": {"type": "object"}},
                  "clipped": {"type": "array", "items": {"type": "object"}},
                  "infeasible": {"type": "array", "items": {"type": "object"}},
                  "units": {"type": "array", "items": {"type": "object"}}}}
    refused = {"description": "Refused (error.code: the what-if's reason, e.g. not_a_number, "
               "unknown_field, unknown_factor, not_a_branch)",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    dash_week = {"name": "week", "in": "query", "required": False,
                 "schema": {"type": "integer"},
                 "description": "Week of the period (1..); default: the current week"}
    return {
        "/inputs.{fmt}": {"get": {
            "summary": "The pre-filled inputs sheet of the units in the caller's write scope "
                       "(unit.write)", "parameters": [fmt, PERIOD],
            "responses": {**download, "409": report}}},
        "/inputs": {"post": {
            "summary": "Upload a filled inputs sheet: every row is checked, all or nothing "
                       "(unit.write over each row's unit)",
            "requestBody": upload,
            "responses": {"200": {"description": "Stored: period, rows, units_changed, "
                                  "values_changed", "content": {"application/json": {
                                      "schema": counts}}},
                          "401": ERROR, "403": ERROR, "413": ERROR, "422": report}}},
        "/imports/templates/{kind}.{fmt}": {"get": {
            "summary": "An empty import sheet with its columns and an example row (admin, HRBP)",
            "parameters": [kind, fmt], "responses": download}},
        "/imports/{kind}": {"post": {
            "summary": "Import org units, people or history from a sheet, all or nothing "
                       "(admin, HRBP)", "parameters": [kind], "requestBody": upload,
            "responses": {"200": {"description": "Stored: rows and created, updated, moved "
                                  "(org, people) or inserted, updated (history)",
                                  "content": {"application/json": {"schema": counts}}},
                          "401": ERROR, "403": ERROR, "404": ERROR, "413": ERROR,
                          "422": report}}},
        "/config/bundle": {
            "get": _get("Every active spec as one bundle (admin, HRBP)", bundle),
            "post": {
                "summary": "Import a bundle (the JSON body, or a multipart file \"bundle\"): "
                           "all or nothing; a spec whose content is new gets a new version",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": bundle},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "bundle": binary}}}}},
                "responses": {
                    "200": {"description": "What happened to each spec", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "imported": {"type": "array", "items": {
                                "type": "object", "properties": {
                                    "kind": {"type": "string"}, "key": {"type": "string"},
                                    "action": {"enum": ["unchanged", "activated", "created"]},
                                    "version": {"type": "integer"}}}}}}}}},
                    "400": ERROR, "401": ERROR, "403": ERROR, "413": ERROR,
                    "422": {"description": 'Refused, nothing imported: error.code '
                            '"invalid_bundle", details.issues lists each problem with its '
                            "JSON pointer into the bundle, code, message, kind and key",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/Error"}}}}}}},
        "/confirm/alignment": {"get": _get(
            "How far a period's targets are agreed: per level items, accepted, pending, "
            "appealed, dispute rate, groups; appeals by status and each appeal; letters "
            "(admin, HRBP, executives)", {"type": "object", "properties": {
                "period": {"type": "string"}, "plan": {"type": ["object", "null"]},
                "published_at": {"type": ["string", "null"]},
                "aligned_at": {"type": ["string", "null"]},
                "elapsed_seconds": {"type": ["number", "null"]},
                "levels": {"type": "array", "items": {"type": "object"}},
                "appeals_by_status": {"type": "object"}, "letters": {"type": "object"},
                "appeals": {"type": "array", "items": {"type": "object"}}}},
            params=[PERIOD])},
        "/hr/export": {"get": {
            "summary": "The HR export of the period's latest published plan: one row per "
                       "person within the caller's scope (admin, HRBP)",
            "parameters": [PERIOD, {"name": "format", "in": "query", "required": False,
                                    "schema": {"enum": ["json", "csv", "xlsx"],
                                               "default": "json"}}],
            "responses": {"200": {"description": "JSON (header, rows, target column and "
                                  "total), or the page's file", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "period": {"type": "string"}, "plan": {"type": "object"},
                    "header": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"type": "array"}},
                    "target_column": {"type": "integer"},
                    "target_total": {"type": "integer"}}}},
                "text/csv": {"schema": binary},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": binary}}},
                "401": ERROR, "403": ERROR, "404": ERROR, "422": ERROR}}},
        "/plans/{plan_id}/export.xlsx": {"get": {
            "summary": "The plan as .xlsx: a summary sheet and the units within the caller's "
                       "scope (the plan page's download)", "parameters": [PLAN_ID],
            "responses": {"200": {"description": "The workbook", "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": binary}}}, "401": ERROR, "403": ERROR, "404": ERROR}}},
        "/plans/simulate": {"post": {
            "summary": "Every scenario for a period and company total, with totals, plan "
                       "risks (company readers) and the regions within the caller's scope; "
                       "nothing is saved",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["total"], "properties": {
                    "period": {"type": "string"}, "total": {"type": "number"}}}}}},
            "responses": {"200": {"description": "The scenarios", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "period": {"type": "string"}, "total": {"type": "integer"},
                    "scenarios": {"type": "array", "items": {"type": "object"}}}}}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "422": ERROR}}},
        "/confirm/appeal-check": {"get": {
            "summary": "The appeal form's live check of a requested target against the "
                       "range of the caller's own confirmation item",
            "parameters": [
                {"name": "item", "in": "query", "required": True,
                 "schema": {"type": "integer"}, "description": "Confirmation item id"},
                {"name": "requested", "in": "query", "required": False,
                 "schema": {"type": "string"}, "description": "The requested target (yuan)"}],
            "responses": {"200": {"description": "bounds (allocated, minimum, maximum, "
                                  "step, ...), requested, change, ok, and error (code, "
                                  "message, details) when the request does not fit",
                                  "content": {"application/json": {"schema": {
                                      "type": "object"}}}},
                          "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR}}},
        "/dashboard": {"get": _get(
            "The caller's own dashboard, as /dashboard opens it: kind \"operations\" "
            "(admins, HRBPs: configuration health, flows waiting, outbox) or the dashboard "
            "of the unit of their most senior grant (see /dashboard/units/{code})",
            {"type": "object"}, params=[PERIOD, dash_week])},
        "/dashboard/units/{code}": {"get": _get(
            "A unit's dashboard (kind executive, region, team or person by its depth): "
            "status, week, plan, the unit's figures, children ranked, forecast, alerts, "
            "risks; status other than \"ok\" (no_plan, no_published_plan, no_weeks, "
            "inactive) comes with a "
            "message instead of figures", {"type": "object"}, params=[CODE, PERIOD, dash_week])},
        "/whatif/{code}": {"post": {
            "summary": "Re-allocate a unit's subtree with other inputs and weights "
                       "(plan.whatif; nothing is saved)", "parameters": [CODE],
            "requestBody": whatif_body,
            "responses": {"200": {"description": "The what-if", "content": {
                "application/json": {"schema": whatif}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "404": refused, "422": refused}}},
        "/whatif/{code}/snapshot": {"post": {
            "summary": "Keep a what-if as evidence: an upload of the unit whose id an appeal "
                       "may cite", "parameters": [CODE], "requestBody": whatif_body,
            "responses": {"201": {"description": "The stored evidence", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "upload_id": {"type": "integer"}, "unit": {"type": "string"},
                    "plan": {"type": "integer"}, "filename": {"type": "string"},
                    "sha256": {"type": "string"}}}}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "404": refused, "422": refused}}},
    }


def openapi_document() -> dict[str, Any]:
    unit_ref = {"$ref": "#/components/schemas/Unit"}
    units = {"type": "object", "properties": {"units": {"type": "array", "items": unit_ref}}}
    planning = {"type": "object", "properties": {
        "period": {"type": ["string", "null"], "description": "The planning period; null while "
                   "several periods wait for HRBP or an admin to choose one"},
        "chosen": {"type": "boolean", "description": "false: not chosen yet (the only period)"},
        "periods": {"type": "array", "items": {"type": "string"}}}}
    values = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
    attributes = {"type": "object", "properties": {
        "unit": {"type": "string"}, "period": {"type": "string"}, "values": values}}
    pending_attributes = {"type": "object", "properties": {
        **attributes["properties"], "status": {"const": "pending_approval"},
        "flow_id": {"type": "integer"}, "message": {"type": "string"}}}
    put_attributes = {
        "summary": "Set some of a unit's inputs for a period (null clears one)",
        "description": "Once the period's plan is published, a change a region head, team "
                       "lead or sales person makes to a factor model input of a unit that "
                       "moves their own target is not applied: it starts an input change "
                       "request (the input_change flow; by default the HRBP approves) and "
                       "the answer is 202 with the unchanged values, status "
                       "\"pending_approval\" and the flow's id; with the confirmation "
                       "policy's input_changes_after_publish \"locked\" it is refused (422, "
                       "pointer /values/<name>).",
        "parameters": [CODE],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["values"],
            "properties": {"period": {"type": "string"}, "values": values}}}}},
        "responses": {
            "200": {"description": "Stored values (status \"applied\")",
                    "content": {"application/json": {"schema": attributes}}},
            "202": {"description": "Not applied: the changes await approval (status "
                                   "\"pending_approval\", flow_id, message)",
                    "content": {"application/json": {"schema": pending_attributes}}},
            "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "422": ERROR,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "QuotaFlow API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/openapi.json": {"get": {"summary": "This document (public)", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": {"application/json": {
                                                                "schema": {"type": "object"}}}}}}},
            "/me": {"get": _get("The caller and their grants", {"type": "object"})},
            "/periods": {"get": _get("Periods with their ISO weeks", {"type": "object"})},
            "/planning-period": {
                "get": _get("The company's planning period: what a request without a period "
                            "plans for", planning),
                "put": _post("Choose the planning period (admin, HRBP; audited)", planning,
                             body={"type": "object", "required": ["period"],
                                   "properties": {"period": {"type": "string"}}},
                             errors=("400", "401", "403", "404")),
            },
            "/units": {"get": _get("The tops of the caller's scope", units)},
            "/units/{code}": {"get": _get("One unit", unit_ref, params=[CODE])},
            "/units/{code}/children": {"get": _get("A unit's children", units, params=[CODE])},
            "/units/{code}/attributes": {
                "get": _get("A unit's inputs for a period", attributes, params=[CODE, PERIOD]),
                "put": put_attributes,
            },
            "/units/{code}/history": {"get": _get("A unit's past results", {"type": "object"}, params=[CODE])},
            "/audit": {"get": _get("The audit log, newest first (admin, HRBP)", {"type": "object"})},
            **_spec_paths(),
            **_plan_paths(),
            **_flow_paths(),
            **_tracking_paths(),
            **_confirm_paths(),
            **_plan_version_paths(),
            **_letter_paths(),
            **_operations_paths(),
            **_admin_paths(),
            **_emergency_paths(),
            **_twin_paths(),
            **_page_twin_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Create with `quotaflow users token USERNAME`"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "Browser session; writes need the X-CSRFToken header"},
            },
            "schemas": {
                "Unit": {"type": "object", "properties": {
                    k: {"type": ["string", "null"]} for k in
                    ("code", "parent", "level", "name_en", "name_zh", "city_en", "city_zh", "opened")}},
                "SpecVersion": {"type": "object", "properties": {
                    "kind": {"type": "string"}, "key": {"type": "string"},
                    "version": {"type": "integer"},
                    "status": {"enum": ["draft", "active", "retired"]},
                    "content_hash": {"type": "string"}, "author": {"type": ["string", "null"]},
                    "created_at": {"type": "string"}, "note": {"type": ["string", "null"]},
                    "content": {}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "details": {}}}}},
            },
            "responses": {"Error": {"description": "Error", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }


def _id_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"},
            "description": description}


ITEM_ID = _id_param("item_id", "Confirmation item id (GET /confirmations)")
APPEAL_ID = _id_param("appeal_id", "Appeal id")
UPLOAD_ID = _id_param("upload_id", "Upload id (as returned by POST /uploads)")
LETTER_ID = _id_param("letter_id", "Commitment letter id")


def _confirm_paths() -> dict[str, Any]:
    """Two-way confirmation: my items, accept one or many, appeal with evidence, uploads."""
    item = {"type": "object", "properties": {
        "id": {"type": "integer"}, "unit": {"type": "string"},
        "unit_name_en": {"type": "string"}, "unit_name_zh": {"type": "string"},
        "period": {"type": "string"}, "plan_id": {"type": "integer"},
        "target": {"type": "integer"},
        "status": {"enum": ["pending", "accepted", "appealed", "adjusted", "closed"]},
        "version": {"type": "integer", "description": "Send it back when answering: a "
                    "target that changed meanwhile is refused (409 stale)"},
        "decided_at": {"type": ["string", "null"]},
        "open_appeal": {"type": ["integer", "null"]}}}
    items = {"type": "object", "properties": {"items": {"type": "array", "items": item}}}
    appeal = {"type": "object", "properties": {
        "id": {"type": "integer"}, "item_id": {"type": "integer"}, "unit": {"type": "string"},
        "level": {"type": "string"}, "plan_id": {"type": "integer"},
        "allocated": {"type": "integer"}, "requested": {"type": "integer"},
        "approved": {"type": ["integer", "null"]}, "reason": {"type": "string"},
        "evidence": {"type": "array", "items": {"type": "integer"}},
        "status": {"type": "string"}, "flow": {"type": "string"},
        "flow_instance_id": {"type": ["integer", "null"]},
        "result_plan_id": {"type": ["integer", "null"]},
        "decision_note": {"type": ["string", "null"]}, "submitted_at": {"type": "string"},
        "decided_at": {"type": ["string", "null"]}}}
    upload = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "size": {"type": "integer"},
        "content_type": {"type": "string"}, "sha256": {"type": "string"},
        "unit": {"type": "string"}, "url": {"type": "string"}}}
    version = {"type": "object", "properties": {"version": {"type": "integer"}}}
    period = {"name": "period", "in": "query", "required": False,
              "schema": {"type": "string"}, "description": "Only this period's items"}
    return {
        "/confirmations": {"get": _get("Targets waiting for my answer (the unit's head: "
                                       "region head, team lead, sales person)", items,
                                       params=[period])},
        "/confirmations/{item_id}/accept": {"post": _post(
            "Accept my unit's target", item, body=version, params=[ITEM_ID])},
        "/confirmations/accept": {"post": _post(
            "Accept several targets at once: all or nothing", items, body={
                "type": "object", "required": ["items"], "properties": {"items": {
                    "type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["id"], "properties": {
                            "id": {"type": "integer"}, "version": {"type": "integer"}}}}}})},
        "/confirmations/{item_id}/appeal": {
            "get": _get("What an appeal of my item may ask for: range, step, evidence and "
                        "reason needed", {"type": "object", "properties": {
                            k: {"type": "number"} for k in (
                                "allocated", "minimum", "maximum", "step", "range_percent",
                                "min_evidence", "reason_min")}}, params=[ITEM_ID]),
            "post": _post("Appeal my unit's target: the requested amount (within the policy's "
                          "range, checked again when approved), a reason and evidence (upload "
                          "ids from POST /uploads); the policy's flow decides it", appeal,
                          body={"type": "object", "required": ["requested", "reason"],
                                "properties": {
                                    "requested": {"type": "integer"},
                                    "reason": {"type": "string", "maxLength": 2000},
                                    "evidence": {"type": "array",
                                                 "items": {"type": "integer"}},
                                    "version": {"type": "integer"}}},
                          params=[ITEM_ID], status="201")},
        "/appeals/{appeal_id}": {"get": _get("One appeal (units in the caller's scope)",
                                             appeal, params=[APPEAL_ID])},
        "/uploads": {"post": _post(
            "Store a file (evidence) for a unit the caller may write; answers its id",
            upload, body={"type": "object", "required": ["unit", "file"], "properties": {
                "unit": {"type": "string", "description": "Unit code"},
                "file": {"type": "string", "contentMediaType": "application/octet-stream"}}},
            status="201", errors=("400", "401", "403", "404", "413", "422"),
            content_type="multipart/form-data")},
        "/uploads/{upload_id}": {"get": {
            "summary": "Download an uploaded file (units in the caller's scope)",
            "parameters": [UPLOAD_ID],
            "responses": {"200": {"description": "The file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "contentMediaType":
                                                        "application/octet-stream"}}}},
                "401": ERROR, "403": ERROR, "404": ERROR}}},
    }


def _plan_version_paths() -> dict[str, Any]:
    """Publishing a plan and comparing two versions of a period's plan."""
    diff = {"type": "object", "properties": {
        "plan": _PLAN, "against": _PLAN, "units_total": {"type": "integer"},
        "units_changed": {"type": "integer"},
        "units": {"type": "array", "items": {"type": "object", "properties": {
            "code": {"type": "string"}, "name_en": {"type": "string"},
            "name_zh": {"type": "string"}, "old": {"type": ["integer", "null"]},
            "new": {"type": ["integer", "null"]}, "change": {"type": "integer"},
            "change_pct": {"type": ["number", "null"]}}}},
        "versions": {"type": "array", "items": {"type": "object"}}}}
    against = {"name": "against", "in": "query", "required": False,
               "schema": {"type": "integer"},
               "description": "The plan to compare with (default: the one this was based on)"}
    limit = {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}
    return {
        "/plans/{plan_id}/publish": {"post": _post(
            "Publish a draft plan (plan.publish): the regions are asked to confirm their "
            "targets", _PLAN, params=[PLAN_ID], errors=("401", "403", "404", "409", "422"))},
        "/plans/{plan_id}/diff": {"get": _get(
            "Each unit's target in two versions, changed units first (caller's scope)",
            diff, params=[PLAN_ID, against, limit])},
    }


def _letter_paths() -> dict[str, Any]:
    """Commitment letters: mine and my team's, one card, sign, countersign, PDF."""
    letter = {"type": "object", "properties": {
        "id": {"type": "integer"}, "unit": {"type": "string"}, "plan_id": {"type": "integer"},
        "version": {"type": "integer"},
        "status": {"enum": ["issued", "signed", "countersigned", "superseded"]},
        "target": {"type": "integer"}, "content_sha256": {"type": "string"},
        "issued_at": {"type": "string"}, "superseded_by": {"type": ["integer", "null"]},
        "signatures": {"type": "array", "items": {"type": "object"}},
        "pdf": {"type": "string"}, "can_sign": {"type": "boolean"},
        "can_countersign": {"type": "boolean"},
        "content": {"type": "object", "description": "The card as signed (one letter)"},
        "intact": {"type": "boolean", "description": "The content matches its hash"}}}
    refused = ("401", "403", "404", "409")
    return {
        "/letters": {"get": _get("My card and its history (sales people) and the cards of "
                                 "the teams I lead, or of my scope", {
                                     "type": "object", "properties": {
                                         "mine": {"oneOf": [letter, {"type": "null"}]},
                                         "history": {"type": "array", "items": letter},
                                         "team": {"type": "array", "items": letter}}})},
        "/letters/{letter_id}": {"get": _get("One card with its content and signatures",
                                             letter, params=[LETTER_ID])},
        "/letters/{letter_id}/sign": {"post": _post(
            "Sign my own card (\"I commit\")", letter, params=[LETTER_ID], errors=refused)},
        "/letters/{letter_id}/countersign": {"post": _post(
            "Countersign a card of my team, after the person signed", letter,
            params=[LETTER_ID], errors=refused)},
        "/letters/{letter_id}/pdf": {"get": {
            "summary": "The card as a PDF (Chinese and English labels, signatures, hash)",
            "parameters": [LETTER_ID],
            "responses": {"200": {"description": "The PDF", "content": {
                "application/pdf": {"schema": {"type": "string",
                                               "contentMediaType": "application/pdf"}}}},
                "401": ERROR, "403": ERROR, "404": ERROR, "503": ERROR}}},
    }


def _operations_paths() -> dict[str, Any]:
    """During the quarter: the alert scan, actuals by file, the outbox and the inbox."""
    scan = {"type": "object", "properties": {
        "run_id": {"type": "integer"}, "period": {"type": "string"}, "week": {"type": "integer"},
        "units": {"type": "integer"}, "hits": {"type": "integer"},
        "raised": {"type": "integer", "description": "New alerts"},
        "alert_ids": {"type": "array", "items": {"type": "integer"}},
        "existing": {"type": "integer"}, "suppressed": {"type": "integer"},
        "targets_source": {"type": "string"}, "plan_number": {"type": "integer"}}}
    counts = {"type": "object", "properties": {
        k: {"type": "integer"} for k in ("records", "inserted", "updated", "unchanged")}}
    delivery = {"type": "object", "properties": {
        "id": {"type": "integer"}, "event_id": {"type": "integer"}, "topic": {"type": "string"},
        "channel": {"type": "string"}, "status": {"enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]},
        "next_attempt_at": {"type": ["string", "null"]},
        "delivered_at": {"type": ["string", "null"]}, "created_at": {"type": "string"}}}
    message = {"type": "object", "properties": {
        "id": {"type": "integer"}, "topic": {"type": "string"}, "title_en": {"type": "string"},
        "title_zh": {"type": "string"}, "body_en": {"type": "string"},
        "body_zh": {"type": "string"}, "url": {"type": ["string", "null"]},
        "created_at": {"type": "string"}, "read_at": {"type": ["string", "null"]}}}
    read = {"type": "object", "properties": {"read": {"type": "integer",
                                                      "description": "Messages marked read"}}}
    fmt = {"name": "format", "in": "query", "required": False,
           "schema": {"enum": ["xlsx", "csv"], "default": "xlsx"}}
    file_body = {"type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "contentMediaType": "application/octet-stream",
        "description": ".csv or .xlsx: unit_code, date, value[, source, source_id]"}}}
    return {
        "/alerts/scan": {"post": _post(
            "Scan a week for alerts with the active rules (alerts.scan: admins, HR); running "
            "it again for the same week adds nothing", scan, body={
                "type": "object", "properties": {
                    "period": {"type": "string", "description": "Default: the period "
                               "holding today, else the latest"},
                    "week": {"type": "integer", "minimum": 1,
                             "description": "Default: the current week"}}})},
        "/actuals/import": {"post": _post(
            "Import actuals from a file (unit.write over every person in it): all or "
            "nothing; details.issues lists each problem by row and column", counts,
            body=file_body, content_type="multipart/form-data",
            errors=("400", "401", "403", "413", "422"))},
        "/actuals/template": {"get": {
            "summary": "The actuals upload template", "parameters": [fmt],
            "responses": {"200": {"description": "The template", "content": {
                "application/octet-stream": {"schema": {
                    "type": "string", "contentMediaType": "application/octet-stream"}}}},
                "400": ERROR, "401": ERROR, "403": ERROR}}},
        "/outbox": {"get": _get("Deliveries per channel and status, and the dead or "
                                "failing ones (outbox.read: admins, HR)", {
                                    "type": "object", "properties": {
                                        "channels": {"type": "array",
                                                     "items": {"type": "object"}},
                                        "problems": {"type": "array", "items": delivery}}})},
        "/outbox/deliveries/{delivery_id}/retry": {"post": _post(
            "Re-queue a dead or waiting delivery: due now, attempts reset (outbox.read)",
            delivery, params=[_id_param("delivery_id", "Outbox delivery id")],
            errors=("401", "403", "404", "409"))},
        "/inbox": {"get": _get("My in-app messages, newest first, and how many are unread", {
            "type": "object", "properties": {"unread": {"type": "integer"},
                                             "messages": {"type": "array", "items": message}}})},
        "/inbox/{message_id}/read": {"post": _post(
            "Mark one of my messages read", read,
            params=[_id_param("message_id", "Inbox message id")],
            errors=("401", "403", "404"))},
        "/inbox/read-all": {"post": _post("Mark all my messages read", read,
                                          errors=("401", "403"))},
    }


def _admin_paths() -> dict[str, Any]:
    """Accounts and role grants (users.manage: administrators); API tokens (everyone's
    own, administrators' anyone's)."""
    grant = {"type": "object", "properties": {
        "id": {"type": "integer"}, "role": {"type": "string"}, "unit": {"type": "string"},
        "created_at": {"type": "string"}}}
    user = {"type": "object", "properties": {
        "username": {"type": "string"}, "display_name": {"type": "string"},
        "email": {"type": ["string", "null"]}, "locale": {"enum": ["zh", "en"]},
        "active": {"type": "boolean"}, "person_unit": {"type": ["string", "null"]},
        "created_at": {"type": "string"}, "grants": {"type": "array", "items": grant}}}
    roles = {"enum": ["admin", "hrbp", "executive", "region_head", "team_lead", "sales"]}
    username = {"name": "username", "in": "path", "required": True,
                "schema": {"type": "string"}}
    active = {"name": "active", "in": "query", "required": False,
              "schema": {"enum": ["true", "false", "all"]}}
    grant_body = {"type": "object", "required": ["role", "scope"], "properties": {
        "role": roles, "scope": {"type": "string", "description": "Unit code"}}}
    when = {"type": ["string", "null"], "format": "date-time"}
    token = {"type": "object", "properties": {
        "id": {"type": "integer"}, "username": {"type": "string"}, "name": {"type": "string"},
        "created_at": when, "expires_at": when, "last_used_at": when, "revoked_at": when,
        "state": {"enum": ["active", "expired", "revoked"]}}}
    token_created = {"type": "object", "properties": {
        **token["properties"], "token": {"type": "string", "description": "The secret, "
                                         "shown only in this answer (send it as Bearer)"}}}
    token_body = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 100, "default": "integration"},
        "days": {"type": "integer", "minimum": 1, "description": "Lifetime (default 90, at "
                 "most 365; the server's config may change both)"}}}
    return {
        "/users": {
            "get": _get("Accounts with their role grants", {"type": "object", "properties": {
                "users": {"type": "array", "items": user}}}, params=[active]),
            "post": _post("Create an account with one role grant", user, body={
                "type": "object",
                "required": ["username", "display_name", "password", "role", "scope"],
                "properties": {
                    "username": {"type": "string", "maxLength": 64},
                    "display_name": {"type": "string", "maxLength": 200},
                    "password": {"type": "string", "minLength": 8},
                    "role": roles, "scope": {"type": "string", "description": "Unit code"},
                    "locale": {"enum": ["zh", "en"], "default": "zh"},
                    "email": {"type": ["string", "null"]}}}, status="201")},
        "/users/{username}": {"get": _get("One account", user, params=[username])},
        "/users/{username}/deactivate": {"post": _post(
            "Deactivate an account: no sign-in, no tokens; kept for the audit log", user,
            params=[username], errors=("401", "403", "404"))},
        "/users/{username}/activate": {"post": _post(
            "Reactivate an account", user, params=[username], errors=("401", "403", "404"))},
        "/users/{username}/grants": {"post": _post(
            "Grant a role over a unit's subtree", grant, body=grant_body, params=[username],
            status="201")},
        "/users/{username}/grants/{grant_id}": {"delete": _post(
            "Revoke a role grant", None,
            params=[username, _id_param("grant_id", "Role grant id")], status="204",
            errors=("401", "403", "404"))},
        "/users/{username}/tokens": {"post": _post(
            "Create an API token for the account; the token is shown only in this answer",
            token_created, body=token_body, params=[username], status="201",
            errors=("400", "401", "403", "404", "422"))},
        "/users/{username}/sign-out-everywhere": {"post": _post(
            "End every session of the account (copied session cookies stop working too); "
            "its API tokens stay", user, params=[username], errors=("400", "401", "403", "404"))},
        "/users/{username}/password": {"post": _post(
            "Reset another account's password: its sessions end, its API tokens are revoked, "
            "its owner is told in the inbox (audited)", user,
            body={"type": "object", "required": ["password"], "properties": {
                "password": {"type": "string", "minLength": 8}}},
            params=[username], errors=("400", "401", "403", "404", "422"))},
        "/tokens": {
            "get": _get("My API tokens (administrators: ?username= for anyone's), newest "
                        "first, without their secrets", {"type": "object", "properties": {
                            "username": {"type": "string"},
                            "tokens": {"type": "array", "items": token}}},
                        params=[{"name": "username", "in": "query", "required": False,
                                 "schema": {"type": "string"}}]),
            "post": _post(
                "Create an API token (mine; administrators: any account's with username). "
                "Refused when the request itself is authenticated by a token",
                token_created, body={**token_body, "properties": {
                    **token_body["properties"], "username": {"type": "string"}}},
                status="201", errors=("400", "401", "403", "404", "422"))},
        "/me/password": {"post": _post(
            "Change my password (the current one is asked for): my other sessions end, "
            "this one goes on", None, body={
                "type": "object", "required": ["current_password", "new_password"],
                "properties": {"current_password": {"type": "string"},
                               "new_password": {"type": "string", "minLength": 8}}},
            status="204", errors=("400", "401", "403", "422"))},
        "/tokens/{token_id}": {"delete": _post(
            "Revoke an API token (mine; administrators any): it answers 401 from now on",
            None, params=[_id_param("token_id", "API token id")], status="204",
            errors=("400", "401", "403", "404"))},
    }


def _emergency_paths() -> dict[str, Any]:
    """Emergency recomputes (plan.emergency); approving is a flow action on the request's
    flow instance (POST /flows/{instance_id}/actions, by an executive)."""
    preview = {"type": "object", "description": "Old and new planned totals, units changed, "
               "frozen units, region changes, and whether frozen units keep their targets "
               "and sums stay exact", "properties": {
                   "plan_id": {"type": "integer"}, "company_total": {"type": "integer"},
                   "planned_total": {"type": "integer"}, "changed": {"type": "integer"},
                   "frozen_count": {"type": "integer"}, "frozen_kept": {"type": "boolean"},
                   "sums_exact": {"type": "boolean"}, "total_placed": {"type": "boolean"},
                   "regions": {"type": "array", "items": {"type": "object"}}}}
    recompute = {"type": "object", "properties": {
        "id": {"type": "integer"}, "period": {"type": "string"}, "plan_id": {"type": "integer"},
        "cities": {"type": "array", "items": {"type": "string"}},
        "units": {"type": "array", "items": {"type": "string"}},
        "frozen_count": {"type": "integer"}, "total": {"type": ["integer", "null"]},
        "reason": {"type": "string"},
        "status": {"enum": ["pending", "published", "rejected", "withdrawn"]},
        "flow_instance_id": {"type": ["integer", "null"], "description": "Approve with POST "
                             "/flows/{flow_instance_id}/actions {\"action\": \"approve\"}"},
        "result_plan_id": {"type": ["integer", "null"]},
        "requested_by": {"type": ["string", "null"]}, "requested_at": {"type": "string"},
        "decided_at": {"type": ["string", "null"]}, "preview": {"type": ["object", "null"]},
        "result": {"type": ["object", "null"]}}}
    choice = {"type": "object", "properties": {
        "period": {"type": "string"},
        "cities": {"type": "array", "items": {"type": "string"},
                   "description": "Cities to freeze (English names)"},
        "units": {"type": "array", "items": {"type": "string"},
                  "description": "Unit codes to freeze (and everything below)"},
        "total": {"type": ["number", "string", "null"],
                  "description": "A new company total in yuan (default: unchanged)"},
        "reason": {"type": "string"}}}
    period = {"name": "period", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "/emergency": {
            "get": _get("Emergency recompute requests, newest first, and the cities one may "
                        "freeze", {"type": "object", "properties": {
                            "requests": {"type": "array", "items": recompute},
                            "cities": {"type": "array", "items": {"type": "object"}}}},
                        params=[period]),
            "post": _post("Request an emergency recompute: frozen units keep their targets, "
                          "the rest is re-run; the fast-track flow decides it", recompute,
                          body={**choice, "required": ["reason"]}, status="201")},
        "/emergency/preview": {"post": _post(
            "The recompute as it would be published now (nothing saved)", preview,
            body=choice)},
        "/emergency/{request_id}": {"get": _get(
            "One request with its preview and, once published, its result", recompute,
            params=[_id_param("request_id", "Emergency recompute request id")])},
    }


def _page_twin_paths() -> dict[str, Any]:
    """Twins of the builder's check and weights, a unit's inputs form (pinned to its
    version), a plan's impact preview, the unit picker's search and the what-if people."""
    version_ref = {"$ref": "#/components/schemas/SpecVersion"}
    new_field = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "type": {"enum": ["number", "integer", "boolean"], "default": "number"},
        "min": {"type": "number"}, "max": {"type": "number"},
        "default": {"type": ["number", "boolean"]}}}
    check = {"type": "object", "properties": {
        "valid": {"type": "boolean"},
        "error": {"type": ["object", "null"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "column": {"type": ["integer", "null"], "description": "1-based, in the expression"}}},
        "level": {"type": "string"},
        "samples": {"type": "array", "items": {"type": "object", "properties": {
            "code": {"type": "string"}, "name_en": {"type": "string"},
            "name_zh": {"type": "string"}, "value": {"type": ["number", "null"]}}}},
        "summary": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "count, min, p25, median, p75, max, negative, zero"},
        "defaulted": {"type": "object", "additionalProperties": {"type": "integer"},
                      "description": "Per field: units without a value (read as its default)"}}}
    scalar = {"type": ["number", "string", "boolean", "null"]}
    form = {"type": "object", "properties": {
        "unit": {"type": "string"}, "period": {"type": "string"},
        "form_version": {"type": "integer", "description": "The inputs form version; send it "
                         "back with the values (a stale one is refused with 409)"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "values": {"type": "object", "additionalProperties": scalar},
        "submission": {"type": "integer", "description": "POST only: the submission id"}}}
    impact_row = {"type": "object", "properties": {
        "code": {"type": "string"}, "name_en": {"type": "string"}, "name_zh": {"type": "string"},
        "old_target": {"type": "integer"}, "new_target": {"type": "integer"},
        "delta": {"type": "integer"}, "delta_pct": {"type": ["number", "null"]}}}
    impact = {"type": "object", "properties": {
        "plan": {"type": "integer"}, "model_version": {"type": "integer"},
        "scenario": {"type": "string"}, "company": impact_row,
        "regions": {"type": "array", "items": impact_row},
        "old_factors": {"type": "array", "items": {"type": "string"}},
        "new_factors": {"type": "array", "items": {"type": "string"}}}}
    cell = {"type": "object", "properties": {
        "name": {"type": "string"}, "value": {"type": "number"},
        "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]}}}
    people = {"type": "object", "properties": {
        "unit": {"type": "string"}, "plan": {"type": "integer"}, "team": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"},
            "label_en": {"type": ["string", "null"]}, "label_zh": {"type": ["string", "null"]}}}},
        "people": {"type": "array", "items": {"type": "object", "properties": {
            "code": {"type": "string"}, "name_en": {"type": "string"},
            "name_zh": {"type": "string"}, "children": {"type": "integer"},
            "cells": {"type": "array", "items": cell}}}}}}
    units = {"type": "object", "properties": {
        "units": {"type": "array", "items": {"$ref": "#/components/schemas/Unit"}}}}

    def factor_body(*, required: list[str]) -> dict[str, Any]:
        text = {"type": "string"}
        return {"type": "object", "required": required, "properties": {
            "key": text, "label_zh": text, "label_en": text, "help": text,
            "expression": {**text, "description": "The measure, e.g. cross_border_rating"},
            "normalisation": {"enum": ["share", "score", "rank"], "default": "share"},
            "scale": {**text, "description": "score only: what the score is multiplied by"},
            "weight": {"type": "number", "minimum": 0, "maximum": 100},
            "rebalance": {"type": "boolean", "default": True,
                          "description": "Scale the other weights so all total 100"},
            "new_fields": {"type": "array", "items": new_field,
                           "description": "Input fields the factor adds to the model"},
            "note": {"type": "string", "maxLength": 500}}}

    def query(name: str, schema: dict[str, Any], description: str, *,
              required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema,
                "description": description}

    impact_get = _get("A plan recomputed under another factor-model version: each region's "
                      "old and new target (spec.read; twin of /plans/{id}/impact)", impact,
                      params=[PLAN_ID, query("model_version", {"type": "integer"},
                                             "Factor-model version id", required=True)])
    impact_get["responses"].update({"400": ERROR, "422": ERROR})
    people_get = _get("One team's people as what-if input rows: values and the policy's "
                      "limits (plan.whatif; twin of the what-if page's people rows)", people,
                      params=[CODE, query("team", {"type": "string"},
                                          "A team below the unit", required=True),
                              query("plan", {"type": "integer"}, "Plan id (default: the "
                                    "sandbox plan of the period)"), PERIOD])
    people_get["responses"]["400"] = ERROR
    return {
        "/builder/check": {"post": _post(
            "Check a factor's measure expression against the edited factor model (plus new "
            "fields) and run it over one level's units of the planning period (spec.write)",
            check, body={"type": "object", "required": ["expression"], "properties": {
                "expression": {"type": "string", "minLength": 1},
                "level": {"type": "integer", "minimum": 0, "default": 2,
                          "description": "Level depth (0 is the company)"},
                "new_fields": {"type": "array", "items": new_field}}},
            errors=("400", "401", "403", "404", "422"))},
        "/builder/weights": {"post": _post(
            "Set every factor's weight (they total 100) as a new draft of the factor model "
            "(spec.write); error details.pointer names the weight", version_ref, body={
                "type": "object", "required": ["weights"], "properties": {
                    "weights": {"type": "object", "additionalProperties": {"type": "number"}},
                    "note": {"type": "string", "maxLength": 500}}}, status="201")},
        "/builder/factors": {"post": _post(
            "Add a factor (with any new input fields) as a new draft of the factor model; the "
            "fields it reads are derived from its expressions (spec.write)", version_ref,
            body=factor_body(required=["key", "weight"]), status="201")},
        "/builder/factors/{key}": {"put": _post(
            "Rewrite a factor and its weight as a new draft of the factor model (spec.write)",
            version_ref, body=factor_body(required=["weight"]), status="201",
            params=[{"name": "key", "in": "path", "required": True,
                     "schema": {"type": "string"}, "description": "Factor key"}])},
        "/collect": {"get": _get(
            "The units the caller fills in inputs for (their write scope, at the levels their "
            "role collects), each with how complete its inputs are (twin of /collect)", {
                "type": "object", "properties": {
                    "period": {"type": "string"},
                    "form_version": {"type": ["integer", "null"]},
                    "units": {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string"}, "level": {"type": "string"},
                        "name_en": {"type": "string"}, "name_zh": {"type": "string"},
                        "filled": {"type": "integer"}, "total": {"type": "integer"},
                        "missing_required": {"type": "integer"},
                        "complete": {"type": "boolean"}}}}}}, params=[PERIOD])},
        "/whatif": {"get": _get("The units the caller may run a what-if on (plan.whatif)",
                                units)},
        "/collect/{code}": {
            "get": _get("A unit's inputs form: its version and the unit's current values "
                        "(the units the caller collects inputs for)", form, params=[CODE, PERIOD]),
            "post": _post(
                "Save a unit's inputs form, pinned to the form version it was filled in "
                "against (409 when stale); every field's refusal is in details.issues with "
                "its pointer; nothing is saved then", form, params=[CODE], status="201",
                body={"type": "object", "required": ["form_version", "values"], "properties": {
                    "form_version": {"type": "integer"},
                    "period": {"type": "string", "description": "Defaults to the planning "
                               "period"},
                    "values": {"type": "object", "additionalProperties": scalar,
                               "description": "The whole form: a field left out is cleared"}}}),
        },
        "/plans/{plan_id}/impact": {"get": impact_get},
        "/units/search": {"get": _get(
            "Units in the caller's scope whose code or names hold q (the unit picker)", units,
            params=[query("q", {"type": "string", "maxLength": 100}, "Text to look for")])},
        "/whatif/{code}/people": {"get": people_get},
    }
