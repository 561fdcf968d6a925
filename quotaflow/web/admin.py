# Flask-Admin views are configured with class attributes (dicts and lists) by design.
# ruff: noqa: RUF012
"""Flask-Admin at /admin: the plain records (org units, users, grants, periods, spec
versions, audit log) for administrators and HRBPs.

Access is decided by the guard (``quotaflow.http.guard``: every endpoint of this Admin
needs "admin.access"); ``is_accessible`` repeats it as a second lock. Every change is
written to the audit log in the same transaction. Spec versions are created through
``services.specs.save_version`` (schema and semantic checks, issues with JSON pointers)
and are never edited. Forms are Flask-WTF forms, so the app's CSRF protection holds.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from flask import Flask, flash, g, request, url_for
from flask_admin import Admin, AdminIndexView
from flask_admin.contrib.sqla import ModelView
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from quotaflow.channels import is_email_address
from quotaflow.http.context import request_context
from quotaflow.http.guard import USERS_ACCESS, Access, current_principal
from quotaflow.services import admin as admin_service
from quotaflow.services import audit, spec_kinds, users
from quotaflow.services import specs as spec_service
from quotaflow.services.access import ROLES
from quotaflow.services.auth import hash_password
from quotaflow.web.filters import ROLE_LABELS

ADMIN_PERMISSION = "admin.access"
#: Never shown, never written to the audit log.
SECRET_COLUMNS = frozenset({"password_hash"})
#: Flask-Admin ships zh_Hans_CN; our locale is "zh". Copied once so its own UI is in Chinese.
ADMIN_CATALOG = ("zh_Hans_CN", "zh")
CONFIRM_SCRIPT = "admin.js"


class AdminForm(FlaskForm):
    """Flask-WTF base form: the CSRF token the app checks on every POST."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Flask-Admin's Unique validator compares with the record being edited.
        self._obj = kwargs.get("obj")
        super().__init__(*args, **kwargs)


def snapshot(model: Any) -> dict[str, Any]:
    """A record's columns as JSON-ready values, secrets left out (for the audit log)."""
    return admin_service.snapshot(model, SECRET_COLUMNS)


def _json_cell(value: Any) -> Markup:
    return Markup("<pre style=\"white-space: pre-wrap\">{}</pre>").format(
        json.dumps(value, ensure_ascii=False, indent=2))


class SecuredMixin:
    """Only principals with admin.access (or the view's ``qf_access``, which the guard
    enforces too); anonymous users go to sign-in (via the guard). A view the principal
    may not reach is left out of the menu."""

    qf_access: Access | None = None

    def is_accessible(self) -> bool:
        principal = current_principal()
        needed = self.qf_access.read if self.qf_access is not None else ADMIN_PERMISSION
        return (principal is not None and principal.has(ADMIN_PERMISSION)
                and (needed is None or principal.has(needed)))


class QuotaFlowIndex(SecuredMixin, AdminIndexView):
    pass


class AuditedModelView(SecuredMixin, ModelView):
    """A model view whose every create, update and delete is audited."""

    form_base_class = AdminForm
    can_view_details = True
    # Bulk actions need Flask-Admin's inline handlers, which our CSP forbids.
    action_disallowed_list = ("delete",)
    page_size = 50
    extra_js: list[str] = []

    def audit_type(self) -> str:
        return admin_service.table_name(self.model)

    def audit_id(self, model: Any) -> str:
        return admin_service.identity(model)

    def describe(self, model: Any) -> dict[str, Any]:
        return snapshot(model)

    def render(self, template: str, **kwargs: Any) -> Any:
        # The delete buttons' confirmation, from a static file (CSP: no inline handlers).
        self.extra_js = [url_for("static", filename=CONFIRM_SCRIPT)]
        return super().render(template, **kwargs)

    def update_model(self, form: Any, model: Any) -> bool:
        g.admin_before = self.describe(model)
        return super().update_model(form, model)

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        with self.session.no_autoflush:
            self.prepare(form, model, is_created)
        self.session.flush()
        audit.record(self.session, current_user._get_current_object(),
                     "admin_create" if is_created else "admin_update", self.audit_type(),
                     self.audit_id(model), None if is_created else g.pop("admin_before", None),
                     self.describe(model), request.remote_addr)

    def prepare(self, form: Any, model: Any, is_created: bool) -> None:
        """Fill derived fields or refuse (raise ValidationError) before the record is saved."""

    def on_model_delete(self, model: Any) -> None:
        audit.record(self.session, current_user._get_current_object(), "admin_delete",
                     self.audit_type(), self.audit_id(model), self.describe(model), None,
                     request.remote_addr)


def _unit_label(unit: Any) -> str:
    return f"{unit.code} {unit.name_zh} / {unit.name_en}" if unit is not None else ""


UNIT_LOOKUP = {"fields": ("code", "name_en", "name_zh"), "page_size": 20}


class OrgUnitView(AuditedModelView):
    column_list = ("code", "name_en", "name_zh", "parent", "level", "city_en", "city_zh",
                   "opened", "active")
    column_searchable_list = ("code", "name_en", "name_zh")
    column_sortable_list = ("code", "name_en", "name_zh", "opened", "active")
    column_default_sort = "code"
    column_formatters = {
        "parent": lambda _v, _c, m, _n: m.parent.code if m.parent else "",
        "level": lambda _v, _c, m, _n: f"{m.level.name_zh} / {m.level.name_en}",
    }
    form_columns = ("parent", "code", "name_en", "name_zh", "city_en", "city_zh", "opened",
                    "active")
    form_ajax_refs = {"parent": UNIT_LOOKUP}
    form_args = {"parent": {"validators": [DataRequired()]},
                 "code": {"validators": [DataRequired(), Length(max=64)]}}
    column_labels = {
        "code": _l("Code"), "name_en": _l("Name (English)"), "name_zh": _l("Name (Chinese)"),
        "parent": _l("Parent"), "level": _l("Level"), "city_en": _l("City (English)"),
        "city_zh": _l("City (Chinese)"), "opened": _l("Opened"), "active": _l("Active"),
    }
    # Units are deactivated, not deleted: plans, inputs and history refer to them.
    can_delete = False

    def audit_id(self, model: Any) -> str:
        return model.code

    def edit_form(self, obj: Any = None) -> Any:
        # Moving a unit rewrites its whole subtree's paths: not a one-record edit.
        form = super().edit_form(obj)
        del form.parent
        return form

    def prepare(self, form: Any, model: Any, is_created: bool) -> None:
        model.code = model.code.strip().upper()
        if not is_created:
            return
        if not admin_service.place_new_unit(self.session, model):
            raise ValidationError(gettext("There is no org level below %(unit)s.",
                                          unit=model.parent.code))


def _email_address(_form: Any, field: Any) -> None:
    """An optional e-mail address (empty: none) in its plain form name@example.com."""
    value = (field.data or "").strip()
    if value and not is_email_address(value):
        raise ValidationError(gettext("“%(value)s” is not an e-mail address (name@example.com).",
                                      value=value))


class UserView(AuditedModelView):
    # Accounts are the administrators' (users.manage): whoever sets passwords can be anyone.
    qf_access = USERS_ACCESS
    column_list = ("username", "display_name", "email", "locale", "active", "person_unit",
                   "created_at")
    column_details_list = column_list
    column_searchable_list = ("username", "display_name", "email")
    column_sortable_list = ("username", "display_name", "active", "created_at")
    column_default_sort = "username"
    column_formatters = {
        "person_unit": lambda _v, _c, m, _n: _unit_label(m.person_unit),
        # The account's tokens and "sign out everywhere" live on its access page.
        "username": lambda _v, _c, m, _n: Markup('<a href="{}" title="{}">{}</a>').format(
            url_for("account.user_access", username=m.username),
            gettext("API tokens and sessions"), m.username),
    }
    form_columns = ("username", "display_name", "email", "locale", "active", "person_unit",
                    "new_password")
    form_extra_fields = {
        "new_password": PasswordField(
            _l("New password"), validators=[Optional(), Length(min=8, max=200)],
            description=_l("Leave empty to keep the current password.")),
    }
    form_choices = {"locale": [("zh", "简体中文"), ("en", "English")]}
    form_ajax_refs = {"person_unit": UNIT_LOOKUP}
    form_args = {"username": {"validators": [DataRequired(), Length(max=64)]},
                 "display_name": {"validators": [DataRequired(), Length(max=200)]},
                 "email": {"validators": [Optional(), _email_address],
                           "description": _l("Where e-mail notifications go; leave empty for "
                                             "none.")}}
    column_labels = {
        "username": _l("Username"), "display_name": _l("Name"), "email": _l("E-mail"),
        "locale": _l("Language"),
        "active": _l("Active"), "person_unit": _l("Person unit"), "created_at": _l("Created"),
        "new_password": _l("New password"),
    }
    # Users are deactivated, not deleted: the audit log and plans name them.
    can_delete = False

    def audit_id(self, model: Any) -> str:
        return model.username

    def prepare(self, form: Any, model: Any, is_created: bool) -> None:
        model.username = model.username.strip().lower()
        model.email = (model.email or "").strip() or None
        password = form.new_password.data
        if password and is_created:
            model.password_hash = hash_password(password)
            g.admin_password_changed = True
        elif is_created:
            raise ValidationError(gettext("Set a password for the new user."))

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        was_active = (g.get("admin_before") or {}).get("active", True)
        super().on_model_change(form, model, is_created)
        password = form.new_password.data
        if password and not is_created:
            # Another account's password: the admin-only, audited use case (it also ends
            # the account's sessions and tokens and tells its owner).
            users.reset_password(request_context(), model.username, password)
        elif not is_created and was_active and not model.active:
            # Unticking "active" ends the account's sessions and tokens, as the API does.
            users.after_deactivation(request_context(), model)

    def describe(self, model: Any) -> dict[str, Any]:
        out = snapshot(model)
        if g.pop("admin_password_changed", False):
            out["password_changed"] = True
        return out


class RoleGrantView(AuditedModelView):
    # Granting roles is the administrators' (users.manage), else one could grant oneself admin.
    qf_access = USERS_ACCESS
    column_list = ("user", "role", "unit", "created_at")
    column_searchable_list = ("role",)
    column_default_sort = ("id", True)
    column_formatters = {
        "user": lambda _v, _c, m, _n: m.user.username,
        "role": lambda _v, _c, m, _n: str(ROLE_LABELS.get(m.role, m.role)),
        "unit": lambda _v, _c, m, _n: _unit_label(m.unit),
    }
    form_columns = ("user", "role", "unit")
    form_choices = {"role": [(r, ROLE_LABELS[r]) for r in ROLES]}
    form_ajax_refs = {"user": {"fields": ("username", "display_name"), "page_size": 20},
                      "unit": UNIT_LOOKUP}
    form_args = {"user": {"validators": [DataRequired()]},
                 "unit": {"validators": [DataRequired()]}}
    column_labels = {"user": _l("User"), "role": _l("Role"), "unit": _l("Scope"),
                     "created_at": _l("Created")}

    def describe(self, model: Any) -> dict[str, Any]:
        out = snapshot(model)
        out["username"] = model.user.username if model.user else None
        out["unit_code"] = model.unit.code if model.unit else None
        return out


class PeriodView(AuditedModelView):
    column_list = ("code", "start_date", "end_date")
    column_default_sort = "start_date"
    form_columns = ("code", "start_date", "end_date")
    form_args = {"code": {"validators": [DataRequired(), Length(max=16)]},
                 "start_date": {"validators": [DataRequired()]},
                 "end_date": {"validators": [DataRequired()]}}
    column_labels = {"code": _l("Code"), "start_date": _l("Start"), "end_date": _l("End")}
    # Plans, inputs and history refer to periods.
    can_delete = False

    def audit_id(self, model: Any) -> str:
        return model.code

    def prepare(self, form: Any, model: Any, is_created: bool) -> None:
        if model.end_date < model.start_date:
            raise ValidationError(gettext("The end date is before the start date."))
        admin_service.set_period_weeks(self.session, model)


class SpecVersionForm(AdminForm):
    kind = SelectField(_l("Kind"), validators=[DataRequired()])
    key = StringField(_l("Key"), validators=[DataRequired(), Length(max=128)],
                      default=spec_kinds.DEFAULT_MODEL_KEY)
    content = TextAreaField(_l("Content (JSON)"), validators=[DataRequired()],
                            render_kw={"rows": 24, "spellcheck": "false",
                                       "style": "font-family: monospace"})
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])
    activate = BooleanField(_l("Activate after saving"))


class SpecVersionView(AuditedModelView):
    """List and read versions; create through the validating service; never edit."""

    can_edit = False
    can_delete = False
    form = SpecVersionForm
    column_list = ("kind", "key", "version", "status", "content_hash", "author", "created_at",
                   "note")
    column_details_list = (*column_list, "content")
    column_searchable_list = ("kind", "key", "status")
    column_sortable_list = ("kind", "key", "version", "status", "created_at")
    column_default_sort = ("id", True)
    column_formatters = {
        "content_hash": lambda _v, _c, m, _n: m.content_hash[:12],
        "author": lambda _v, _c, m, _n: m.author.username if m.author else "system",
    }
    column_formatters_detail = {
        "content": lambda _v, _c, m, _n: _json_cell(m.content),
        "author": lambda _v, _c, m, _n: m.author.username if m.author else "system",
    }
    column_labels = {
        "kind": _l("Kind"), "key": _l("Key"), "version": _l("Version"), "status": _l("Status"),
        "content_hash": _l("Hash"), "author": _l("Author"), "created_at": _l("Saved"),
        "note": _l("Note"), "content": _l("Content (JSON)"),
    }

    def create_form(self, obj: Any = None) -> Any:
        from quotaflow.web.config_pages import kind_label

        form = super().create_form(obj)
        form.kind.choices = [(k.name, kind_label(k.name)) for k in spec_kinds.kinds()]
        return form

    def create_model(self, form: Any) -> Any:
        from quotaflow.web.config_pages import issue_view, json_issue, spec_error_message

        try:
            content = json.loads(form.content.data)
        except json.JSONDecodeError as exc:
            form.content.errors = [*form.content.errors, _issue_text(issue_view(json_issue(exc)))]
            return False
        try:
            return spec_service.save_version(
                self.session, form.kind.data, form.key.data.strip(), content,
                current_user._get_current_object(), form.note.data or None,
                activate=bool(form.activate.data), remote_addr=request.remote_addr)
        except spec_service.SpecValidationError as exc:
            form.content.errors = [*form.content.errors,
                                   *(_issue_text(issue_view(p.issue, p.kind, p.key))
                                     for p in exc.problems)]
            flash(spec_error_message(exc), "error")
        except spec_service.SpecServiceError as exc:
            flash(spec_error_message(exc), "error")
        return False


def _issue_text(issue: dict[str, Any]) -> str:
    where = issue["pointer"] + (f" ({gettext('column %(column)s', column=issue['column'])})"
                                if issue["column"] else "")
    spec = f"{issue['kind']}/{issue['key']} " if issue["kind"] else ""
    text = f"{issue['summary']} {issue['detail']}" if issue["summary"] else issue["detail"]
    return f"{spec}{where}: {text}"


class AuditView(SecuredMixin, ModelView):
    """The append-only audit log: read only."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    page_size = 50
    column_list = ("at", "actor_name", "action", "entity_type", "entity_id", "remote_addr")
    column_details_list = (*column_list, "before", "after")
    column_searchable_list = ("actor_name", "action", "entity_type", "entity_id")
    column_default_sort = ("id", True)
    column_formatters_detail = {
        "before": lambda _v, _c, m, _n: _json_cell(m.before),
        "after": lambda _v, _c, m, _n: _json_cell(m.after),
    }
    column_labels = {
        "at": _l("When (UTC)"), "actor_name": _l("Who"), "action": _l("Action"),
        "entity_type": _l("What"), "entity_id": _l("Which"), "remote_addr": _l("Address"),
        "before": _l("Before"), "after": _l("After"),
    }


def _admin_translations(app: Flask) -> str | None:
    """A catalogue folder where Flask-Admin finds its Chinese strings under our "zh" locale."""
    import flask_admin

    source = Path(flask_admin.__file__).parent / "translations" / ADMIN_CATALOG[0] / "LC_MESSAGES"
    target_root = Path(app.instance_path) / "flask-admin-translations"
    target = target_root / ADMIN_CATALOG[1] / "LC_MESSAGES"
    try:
        if not (target / "admin.mo").exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / "admin.mo", target / "admin.mo")
    except OSError:
        return None  # read-only instance folder: Flask-Admin's own strings stay English
    return str(target_root)


def init_admin(app: Flask) -> Admin:
    """Create the Admin at /admin with its views (one per app)."""
    admin = Admin(app, name="QuotaFlow", url="/admin",
                  index_view=QuotaFlowIndex(url="/admin"),  # named "Home" by Flask-Admin
                  theme=Bootstrap4Theme(swatch="default", fluid=True),
                  translations_path=_admin_translations(app))
    # Flask-Admin reads every attribute of a view when it is added (looking for actions),
    # which evaluates the lazy translated names: give that a request to pick a locale in,
    # also when the app is created inside another app's context (the CLI's `serve`).
    with app.test_request_context(), warnings.catch_warnings():
        # Flask-Admin 2 prefers a Flask-SQLAlchemy object; a plain scoped session (ours)
        # is still supported, the warning is about the parameter's name in 3.0.
        warnings.filterwarnings("ignore", "Passing a session object", DeprecationWarning)
        admin_service.add_model_views(admin, VIEWS)
        admin.add_link(MenuLink(name=_l("Back to QuotaFlow"), url="/"))
    return admin


#: The admin's model views: (record name in ``store/admin_models.MODELS``, view, options).
VIEWS: tuple[tuple[str, type[Any], dict[str, Any]], ...] = (
    ("units", OrgUnitView, {"name": _l("Org units"), "endpoint": "admin_units",
                            "url": "/admin/units"}),
    ("users", UserView, {"name": _l("Users"), "endpoint": "admin_users", "url": "/admin/users"}),
    ("grants", RoleGrantView, {"name": _l("Role grants"), "endpoint": "admin_grants",
                               "url": "/admin/grants"}),
    ("periods", PeriodView, {"name": _l("Periods"), "endpoint": "admin_periods",
                             "url": "/admin/periods"}),
    ("specs", SpecVersionView, {"name": _l("Spec versions"), "endpoint": "admin_specs",
                                "url": "/admin/specs"}),
    ("audit", AuditView, {"name": _l("Audit log"), "endpoint": "admin_audit",
                          "url": "/admin/audit"}),
)

