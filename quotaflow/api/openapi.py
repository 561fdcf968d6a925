"""The OpenAPI 3.1 document for /api/v1. Later features add their paths here."""

from __future__ import annotations

from typing import Any

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
        "description": "Spec kind: factor_model, scenario_presets, risk_rules, form"}
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
                                     ("factor_model", "scenario_presets", "risk_rules")}},
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
