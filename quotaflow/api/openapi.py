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
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "details": {}}}}},
            },
            "responses": {"Error": {"description": "Error", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }
