"""The API's one error shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from flask import jsonify


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def api_error(status: int, code: str, message: str, details: Any = None) -> Any:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response
