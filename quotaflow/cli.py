"""The ``quotaflow`` command: a Flask CLI group with QuotaFlow's own commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from quotaflow.allocate_cli import allocate_command
from quotaflow.app import create_app

DEMO_LOGINS_FILE = "demo-logins.txt"


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """QuotaFlow: fair, explained, agreed and tracked sales targets."""


# -- database -----------------------------------------------------------------------------

@main.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from quotaflow.store.migrate import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from quotaflow.store.migrate import downgrade

    downgrade(current_app.config["DATABASE_URL"], revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the applied revision."""
    from quotaflow.store.migrate import current

    current(current_app.config["DATABASE_URL"])


# -- demo ---------------------------------------------------------------------------------

def _seed_demo(password: str | None) -> Path:
    from quotaflow.services.seeding import load_demo
    from quotaflow.store import db

    password, logins = load_demo(db.session, password=password)
    path = Path(current_app.instance_path) / DEMO_LOGINS_FILE
    lines = ["# QuotaFlow demo logins (DEMO ONLY: generated at seeding, never use in production)",
             f"# password for every demo user: {password}", ""]
    lines += [f"{login.username:<20} {login.role:<12} {login.scope:<10} {login.display_name}"
              for login in logins]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@main.group("seed")
def seed_group() -> None:
    """Load data from seed/."""


@seed_group.command("demo")
@click.option("--password", help="Demo password for every demo user (default: generated).")
@with_appcontext
def seed_demo(password: str | None) -> None:
    """Load the demo company into an empty database and print the logins."""
    path = _seed_demo(password)
    click.echo(path.read_text(encoding="utf-8"))


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def demo(host: str, port: int) -> None:
    """Migrate, seed the demo company if the database is empty, print the logins, serve."""
    from sqlalchemy import func, select

    from quotaflow.i18n import compile_catalogs
    from quotaflow.store import db
    from quotaflow.store.migrate import upgrade
    from quotaflow.store.models import OrgUnit

    compile_catalogs()
    upgrade(current_app.config["DATABASE_URL"])
    path = Path(current_app.instance_path) / DEMO_LOGINS_FILE
    if not db.session.scalar(select(func.count()).select_from(OrgUnit)):
        path = _seed_demo(None)
    db.session.remove()
    if path.exists():
        click.echo(path.read_text(encoding="utf-8"))
    click.echo(f"QuotaFlow demo on http://{host}:{port}/  (Ctrl+C to stop)")
    # Flask's app.run() refuses to run inside the flask CLI; werkzeug serves directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True)


# -- production server ----------------------------------------------------------------------

@main.command("serve")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
def serve(workers: int, bind: str) -> None:
    """Run under gunicorn (production; use PostgreSQL via QUOTAFLOW_DATABASE_URL)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("workers", workers)
            self.cfg.set("bind", bind)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return create_app()

    _Server().run()


# -- users ------------------------------------------------------------------------------------

@main.group("users")
def users_group() -> None:
    """Accounts, role grants and API tokens."""


@users_group.command("create")
@click.argument("username")
@click.option("--name", "display_name", required=True)
@click.option("--role", type=click.Choice(["admin", "hrbp", "executive", "region_head", "team_lead", "sales"]),
              required=True)
@click.option("--scope", "scope_code", required=True, help="Org unit code the role applies to")
@click.option("--locale", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.password_option()
@with_appcontext
def users_create(username: str, display_name: str, role: str, scope_code: str, locale: str,
                 password: str) -> None:
    """Create a user with one role grant."""
    from quotaflow.services import audit
    from quotaflow.services.auth import hash_password
    from quotaflow.store import db
    from quotaflow.store.models import RoleGrant, User
    from quotaflow.store.queries import unit_by_code, user_by_username

    with db.transaction() as session:
        if user_by_username(session, username.lower()):
            raise click.ClickException(f"user {username!r} exists")
        unit = unit_by_code(session, scope_code)
        if unit is None:
            raise click.ClickException(f"unknown org unit {scope_code!r}")
        user = User(username=username.lower(), display_name=display_name,
                    password_hash=hash_password(password), locale=locale)
        user.grants.append(RoleGrant(role=role, unit=unit))
        session.add(user)
        audit.record(session, None, "create_user", "user", user.username,
                     after={"role": role, "scope": scope_code})
    click.echo(f"created {username} ({role} over {scope_code})")


@users_group.command("token")
@click.argument("username")
@click.option("--name", default="integration", show_default=True)
@with_appcontext
def users_token(username: str, name: str) -> None:
    """Create an API token for USERNAME and print it once."""
    from quotaflow.services.auth import create_api_token
    from quotaflow.store import db
    from quotaflow.store.queries import user_by_username

    with db.transaction() as session:
        user = user_by_username(session, username.lower())
        if user is None:
            raise click.ClickException(f"unknown user {username!r}")
        token = create_api_token(session, user, name)
    click.echo(token)


# -- configuration (specs) ----------------------------------------------------------------------

@main.group("config")
def config_group() -> None:
    """The whole active configuration (every spec) as one bundle file."""


def _actor(username: str | None) -> Any:
    from quotaflow.store import db
    from quotaflow.store.queries import user_by_username

    if username is None:
        return None
    user = user_by_username(db.session, username.lower())
    if user is None:
        raise click.ClickException(f"unknown user {username!r}")
    return user


@config_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@with_appcontext
def config_export(file: str) -> None:
    """Write every active spec (content, version, hash) to FILE ("-": standard output)."""
    from quotaflow.services.bundle import dumps, export_bundle
    from quotaflow.store import db

    bundle = export_bundle(db.session)
    text = dumps(bundle)
    if file == "-":
        click.echo(text, nl=False)
        return
    Path(file).write_text(text, encoding="utf-8")
    click.echo(f"exported {len(bundle['specs'])} active specs to {file}", err=True)


@config_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--as", "username", help="Record the change in the audit log as this user.")
@with_appcontext
def config_import(file: str, username: str | None) -> None:
    """Validate the bundle FILE, then activate its specs in one transaction (or nothing)."""
    from quotaflow.services.bundle import BundleError, import_bundle, parse
    from quotaflow.store import db

    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    actor = _actor(username)
    try:
        done = import_bundle(db.session, parse(raw), actor)
    except BundleError as exc:
        click.echo(f"{file}: refused, nothing was imported ({len(exc.problems)} problem(s)):",
                   err=True)
        for problem in exc.problems:
            where = problem.issue.pointer or "/"
            column = f" (column {problem.issue.column})" if problem.issue.column else ""
            spec = f"[{problem.kind}/{problem.key}] " if problem.kind else ""
            click.echo(f"  {spec}{where}{column}: {problem.issue.message} "
                       f"({problem.issue.code})", err=True)
        sys.exit(1)
    for item in done:
        click.echo(f"{item.kind}/{item.key}: v{item.version} {item.action}")


# -- translations -------------------------------------------------------------------------------

@main.group("i18n")
def i18n_group() -> None:
    """Message catalogues."""


@i18n_group.command("compile")
def i18n_compile() -> None:
    """Compile translations (.po -> .mo); part of the build."""
    from quotaflow.i18n import compile_catalogs

    for path in compile_catalogs():
        click.echo(f"compiled {path}")


# Needs no database: a plain click command, run without an app context.
main.add_command(allocate_command, "allocate")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
