"""The data model (SQLAlchemy 2, typed).  Later features add tables beside these.

Conventions: surrogate integer keys, stable business codes where people type them,
timestamps in UTC, JSON for spec content and audit snapshots.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("admin", "hrbp", "executive", "region_head", "team_lead", "sales")
SPEC_STATUSES = ("draft", "active", "retired")

# Named constraints make migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class OrgLevel(Base):
    """A level of the org tree with its configurable names (company / region / ...)."""

    __tablename__ = "org_levels"

    depth: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name_en: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(64))
    alias_zh: Mapped[str | None] = mapped_column(String(64))


class OrgUnit(Base):
    """A node of the org tree. ``path`` ("/1/4/17/") makes subtree queries one index range."""

    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    depth: Mapped[int] = mapped_column(ForeignKey("org_levels.depth"))
    path: Mapped[str] = mapped_column(String(512), index=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    city_en: Mapped[str | None] = mapped_column(String(100))
    city_zh: Mapped[str | None] = mapped_column(String(100))
    opened: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[OrgUnit]] = relationship(back_populates="parent", order_by="OrgUnit.code")
    level: Mapped[OrgLevel] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(back_populates="person_unit", uselist=False)

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en

    def city(self, locale: str) -> str | None:
        return self.city_zh if locale.startswith("zh") else self.city_en

    def contains(self, other: OrgUnit) -> bool:
        return other.path.startswith(self.path)


class Period(Base):
    """A planning period (a quarter) with its weeks."""

    __tablename__ = "periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)

    weeks: Mapped[list[PeriodWeek]] = relationship(
        order_by="PeriodWeek.week_no", cascade="all, delete-orphan"
    )

    __table_args__ = (CheckConstraint("end_date >= start_date", name="dates_ordered"),)


class CompanySetting(Base):
    """The company's settings: one row (id 1). ``planning_period`` is the period pages, the
    API and the CLI plan for when no period is named: a choice, so adding next year's
    period does not move them."""

    __tablename__ = "company_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    planning_period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))

    planning_period: Mapped[Period | None] = relationship()

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class PeriodWeek(Base):
    """An ISO week (Monday to Sunday) overlapping a period, clipped to the period."""

    __tablename__ = "period_weeks"

    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), primary_key=True)
    week_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    iso_year: Mapped[int] = mapped_column(Integer)
    iso_week: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)


class SpecVersion(Base):
    """An immutable, numbered version of a spec (factor model, form, flow, ...).

    Only ``status`` may change after saving; the content and its hash never do
    (guarded in ``quotaflow.store.guards``).
    """

    __tablename__ = "spec_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[Any] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    note: Mapped[str | None] = mapped_column(Text)

    author: Mapped[User | None] = relationship()

    __table_args__ = (
        UniqueConstraint("kind", "key", "version", name="uq_spec_versions_kind_key_version"),
        CheckConstraint("status IN ('draft', 'active', 'retired')", name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
        # At most one active version per spec, enforced by the database.
        Index(
            "uq_spec_versions_one_active",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class AttributeValue(Base):
    """One input value of one unit in one period, e.g. ``market_potential``.

    The primary key (period, name, unit) keeps a whole column contiguous in the
    index, so loading it for 100k units is one range scan.
    """

    __tablename__ = "attribute_values"

    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class UnitResult(Base):
    """A unit's result in a past period (history), e.g. ``sales``."""

    __tablename__ = "unit_results"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)

    period: Mapped[Period] = relationship()


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    #: Where per-person channels (e-mail) reach the user; None: the channel's own lookup.
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    person_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    #: Part of every session cookie's user id; raising it ends all the user's sessions
    #: (sign-out, password change or reset, deactivation, "sign out everywhere").
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    person_unit: Mapped[OrgUnit | None] = relationship(back_populates="user")
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    # The session-user protocol Flask-Login expects, without importing it here.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        # Flask-Login's "alternative tokens": the cookie holds id and session version, so
        # a cookie copied before the version was raised no longer loads the user.
        return f"{self.id}:{self.session_version}"


class RoleGrant(Base):
    """A role held over an org subtree (the unit and everything below it)."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants")
    unit: Mapped[OrgUnit] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("user_id", "role", "unit_id", name="uq_role_grants_user_role_unit"),
        CheckConstraint(
            "role IN ('admin', 'hrbp', 'executive', 'region_head', 'team_lead', 'sales')",
            name="role",
        ),
    )


class ApiToken(Base):
    """A bearer token for integrations; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    #: Every token expires; refused from this moment on.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """Sign-in attempts, kept in the database so limits hold across workers."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_remote_addr_at", "remote_addr", "at"),
    )


class AuditEntry(Base):
    """Append-only audit log; updates and deletes are refused by database triggers."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


PLAN_STATUSES = ("draft", "published", "superseded")


class Plan(Base):
    """An allocation of a period's company total, pinned to the spec versions it ran under."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the period
    scenario: Mapped[str] = mapped_column(String(64))
    company_total: Mapped[int] = mapped_column(BigInteger)
    planned_total: Mapped[int] = mapped_column(BigInteger)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"))
    presets_version_id: Mapped[int | None] = mapped_column(ForeignKey("spec_versions.id"))
    risks_version_id: Mapped[int | None] = mapped_column(ForeignKey("spec_versions.id"))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    summary: Mapped[Any] = mapped_column(JSON)  # plan-level risks, infeasibilities, weights
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    period: Mapped[Period] = relationship()
    model_version: Mapped[SpecVersion] = relationship(foreign_keys=[model_version_id])
    created_by: Mapped[User | None] = relationship()

    __table_args__ = (
        UniqueConstraint("period_id", "number", name="uq_plans_period_number"),
        CheckConstraint("status IN ('draft', 'published', 'superseded')", name="status"),
    )


class PlanUnit(Base):
    """One unit's target in a plan, with the parts of its explanation (integers of yuan)."""

    __tablename__ = "plan_units"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    target: Mapped[int] = mapped_column(BigInteger)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    factor_amounts: Mapped[Any] = mapped_column(JSON)  # list of int, in the model's factor order
    bounds_adjustment: Mapped[int] = mapped_column(BigInteger)
    rounding_adjustment: Mapped[int] = mapped_column(BigInteger)
    risks: Mapped[Any] = mapped_column(JSON)  # list of {"rule", "severity"}


class Upload(Base):
    """A file a user uploaded (evidence, spreadsheets); stored under a random name."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))  # whose scope may see it
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    unit: Mapped[OrgUnit] = relationship()


class FormSubmission(Base):
    """Data submitted through a form, pinned to the form's spec version."""

    __tablename__ = "form_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))
    data: Mapped[Any] = mapped_column(JSON)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    form_version: Mapped[SpecVersion] = relationship()


# Feature tables live in modules of their own; importing them here puts every table
# on ``Base.metadata`` whichever module is imported first.
from quotaflow.store import (  # noqa: E402, F401, I001
    outbox_models,
    flow_models,
    confirmation_models,
    letter_models,
    tracking_models,
    emergency_models,
)
