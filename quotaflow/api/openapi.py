"""The OpenAPI 3.1 document for /api/v1. Later features add their paths here."""

from __future__ import annotations

from typing import Any

from quotaflow.flows.permitted import ORDER as ACTION_ORDER
from quotaflow.services import spec_kinds

ERROR = {"$ref": "#/components/responses/Error"}
CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Org unit code, e.g. EAST or P0001"}
PERIOD = {"name": "period", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "Period code such as 2026Q4; defaults to the latest period"}


def _get(summary: str, schema: dict[str, Any], *, params: list[Any] | None = None) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "401": ERROR, "403": ERROR, "404": ERROR,
        },
    }


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
                        "period": {"type": "string", "description": "Defaults to the latest"},
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
        "/alerts": {"get": _get("Alerts of units in the caller's scope, newest week first",
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
            "(plan) and the curve come from", {"type": "object"},
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
            "risks; status other than \"ok\" (no_plan, no_weeks, inactive) comes with a "
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
    values = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
    attributes = {"type": "object", "properties": {
        "unit": {"type": "string"}, "period": {"type": "string"}, "values": values}}
    put_attributes = {
        "summary": "Set some of a unit's inputs for a period (null clears one)",
        "parameters": [CODE],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["values"],
            "properties": {"period": {"type": "string"}, "values": values}}}}},
        "responses": {
            "200": {"description": "Stored values",
                    "content": {"application/json": {"schema": attributes}}},
            "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "422": ERROR,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "QuotaFlow API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/me": {"get": _get("The caller and their grants", {"type": "object"})},
            "/periods": {"get": _get("Periods with their ISO weeks", {"type": "object"})},
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
            **_twin_paths(),
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
