"""Forms from JSON Schema, pure: specs, rendering data, coercion and validation.

Imports neither Flask nor SQLAlchemy: plain data in, plain data out.
"""

from quotaflow.forms.render import FieldView, FormView, Option, build_form
from quotaflow.forms.spec import (
    FieldSpec,
    FormSpecError,
    check_form_spec,
    form_fields,
    may_edit,
    validate_form_spec,
)
from quotaflow.forms.validate import (
    ROW_ACTION,
    FieldError,
    apply_row_action,
    coerce_and_validate,
    schema_errors,
)

__all__ = [
    "ROW_ACTION",
    "FieldError",
    "FieldSpec",
    "FieldView",
    "FormSpecError",
    "FormView",
    "Option",
    "apply_row_action",
    "build_form",
    "check_form_spec",
    "coerce_and_validate",
    "form_fields",
    "may_edit",
    "schema_errors",
    "validate_form_spec",
]
