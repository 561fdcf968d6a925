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
from quotaflow.errors import QuotaFlowError

DEMO_LOGINS_FILE = "demo-logins.txt"


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """QuotaFlow: fair, explained, agreed and tracked sales targets."""


def _refused(exc: QuotaFlowError) -> click.ClickException:
    """A refused use case as the command's error (in English, the CLI's language)."""
    return click.ClickException(exc.message)


def _context(username: str | None = None) -> Any:
    """The use-case context of a command: the system, or ``--as USERNAME``."""
    from quotaflow.services import runtime, users

    ctx = runtime.system()
    try:
        return users.acting_as(ctx, username)
    except QuotaFlowError as exc:
        raise _refused(exc) from None


# -- database -----------------------------------------------------------------------------

@main.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from quotaflow.services.runtime import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from quotaflow.services.runtime import downgrade

    downgrade(current_app.config["DATABASE_URL"], revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the applied revision."""
    from quotaflow.services.runtime import current

    current(current_app.config["DATABASE_URL"])


# -- demo ---------------------------------------------------------------------------------

def _seed_demo(password: str | None) -> Path:
    from quotaflow.services.runtime import open_session
    from quotaflow.services.seeding import load_demo

    password, logins = load_demo(open_session(), password=password)
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
    """Load data from quotaflow/seed_data/."""


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
    from quotaflow.i18n import compile_catalogs
    from quotaflow.services import runtime

    compile_catalogs()
    runtime.upgrade(current_app.config["DATABASE_URL"])
    path = Path(current_app.instance_path) / DEMO_LOGINS_FILE
    if runtime.is_empty(runtime.system()):
        path = _seed_demo(None)
    runtime.close_session()
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
@click.option("--email", default=None, metavar="ADDRESS",
              help="The user's e-mail address (used by the e-mail channel).")
@click.password_option()
@with_appcontext
def users_create(username: str, display_name: str, role: str, scope_code: str, locale: str,
                 email: str | None, password: str) -> None:
    """Create a user with one role grant."""
    from quotaflow.services import users

    try:
        users.create_user(_context(), username, display_name, password, role=role,
                          scope=scope_code, locale=locale, email=email)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"created {username} ({role} over {scope_code})")


@users_group.command("token")
@click.argument("username")
@click.option("--name", default="integration", show_default=True)
@click.option("--days", type=int, default=None, help="Lifetime in days (default: the config's).")
@with_appcontext
def users_token(username: str, name: str, days: int | None) -> None:
    """Create an API token for USERNAME and print it once (as `tokens create`)."""
    click.echo(_create_token(username, name, days)[0])


@users_group.command("sign-out-everywhere")
@click.argument("username")
@with_appcontext
def users_sign_out_everywhere(username: str) -> None:
    """End every session of USERNAME (its API tokens stay)."""
    from quotaflow.services import users

    try:
        users.sign_out_everywhere(_context(), username)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"signed {username} out everywhere")


# -- API tokens -------------------------------------------------------------------------------

@main.group("tokens")
def tokens_group() -> None:
    """API tokens: create (shown once), list, revoke."""


def _create_token(username: str, name: str, days: int | None) -> tuple[str, Any]:
    from flask import current_app

    from quotaflow.services import account

    try:
        return account.create_token(
            _context(), name, username=username, days=days,
            default_days=current_app.config["API_TOKEN_DEFAULT_DAYS"],
            max_days=current_app.config["API_TOKEN_MAX_DAYS"])
    except QuotaFlowError as exc:
        raise _refused(exc) from None


@tokens_group.command("create")
@click.argument("username")
@click.option("--name", default="integration", show_default=True)
@click.option("--days", type=int, default=None, help="Lifetime in days (default: the config's).")
@with_appcontext
def tokens_create(username: str, name: str, days: int | None) -> None:
    """Create an API token for USERNAME; the token is printed once, on standard output."""
    token, row = _create_token(username, name, days)
    click.echo(token)
    click.echo(f"token {row.id} ({row.name}) expires {row.expires_at:%Y-%m-%d %H:%M} UTC",
               err=True)


@tokens_group.command("list")
@click.argument("username")
@with_appcontext
def tokens_list(username: str) -> None:
    """USERNAME's tokens: id, state, name, created, expires, last used."""
    from quotaflow.services import account

    ctx = _context()
    try:
        _owner, tokens = account.list_tokens(ctx, username)
    except QuotaFlowError as exc:
        raise _refused(exc) from None

    def when(value: Any) -> str:
        return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"

    for t in tokens:
        click.echo(f"{t.id}\t{account.token_state(t, ctx.now)}\t{t.name}\t{when(t.created_at)}"
                   f"\t{when(t.expires_at)}\t{when(t.last_used_at)}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke the token TOKEN_ID (see `tokens list`)."""
    from quotaflow.services import account

    try:
        token = account.revoke_token(_context(), token_id)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"revoked token {token.id} ({token.name}) of {token.user.username}")


# -- configuration (specs) ----------------------------------------------------------------------

@main.group("config")
def config_group() -> None:
    """The whole active configuration (every spec) as one bundle file."""


def _actor(username: str | None) -> Any:
    """The user ``--as`` names (None: the system)."""
    from quotaflow.services.auth import actor

    return actor(_context(username))


@config_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@with_appcontext
def config_export(file: str) -> None:
    """Write every active spec (content, version, hash) to FILE ("-": standard output)."""
    from quotaflow.services.bundle import dumps, export_bundle

    bundle = export_bundle(_context())
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
    from quotaflow.services import commands
    from quotaflow.services.bundle import BundleError, parse

    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    ctx = _context(username)
    try:
        done = commands.import_bundle(ctx, parse(raw))
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


# -- outbox (notifications, HR sync) ------------------------------------------------------------

@main.group("outbox")
def outbox_group() -> None:
    """Deliver outbox events to their channels; inspect and re-queue deliveries."""


@outbox_group.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--batch", default=50, show_default=True, help="Deliveries claimed per poll.")
@with_appcontext
def outbox_run(once: bool, interval: float, batch: int) -> None:
    """Deliver due events with retries; several workers may run at once."""
    from quotaflow.services.outbox_worker import ChannelConfigError, run_forever

    try:
        run_forever(current_app.config, once=once, interval=interval, batch=batch, echo=click.echo)
    except ChannelConfigError as exc:
        raise click.ClickException(str(exc)) from None


@outbox_group.command("status")
@with_appcontext
def outbox_status() -> None:
    """Deliveries per channel and status, and the dead ones with their last error."""
    from quotaflow.services import inbox

    rows, problems = inbox.delivery_status(_context())
    problems = problems[:50]
    click.echo(f"{'channel':<16}{'pending':>9}{'delivered':>11}{'failed':>8}")
    for row in rows:
        click.echo(f"{row.channel:<16}{row.pending:>9}{row.delivered:>11}{row.failed:>8}")
    for delivery in problems:
        click.echo(f"#{delivery.id} {delivery.status} {delivery.channel} "
                   f"{delivery.event.topic} attempts={delivery.attempts}: {delivery.last_error}")


@outbox_group.command("retry")
@click.argument("delivery_id", type=int)
@click.option("--as", "username", help="Record the change in the audit log as this user.")
@with_appcontext
def outbox_retry(delivery_id: int, username: str | None) -> None:
    """Re-queue a dead (failed) or waiting delivery: due now, attempts reset."""
    from quotaflow.services import inbox, outbox

    try:
        delivery = inbox.retry_delivery(_context(username), delivery_id)
    except outbox.OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"delivery #{delivery.id} ({delivery.channel}) is queued again")


@outbox_group.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=1), default=90, show_default=True,
              metavar="DAYS", help="Delete deliveries delivered more than DAYS days ago.")
@click.option("--as", "username", help="Record the purge in the audit log as this user.")
@with_appcontext
def outbox_purge(days: int, username: str | None) -> None:
    """Delete old delivered deliveries and then their events (never pending or failed
    deliveries, never inbox messages)."""
    from quotaflow.services import outbox

    try:
        result = outbox.purge_delivered(_context(username), days)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"purged {result.deliveries} delivered deliveries and {result.events} events "
               f"older than {days} days (before {result.cutoff:%Y-%m-%d %H:%M} UTC)")


# -- alerts and actuals (during the quarter) ----------------------------------------------------

@main.group("alerts")
def alerts_group() -> None:
    """Scan a week for alerts (red line, streaks) with their remedies."""


@alerts_group.command("scan")
@click.option("--period", "period_code", help="Period code such as 2026Q4 (default: the "
              "period holding today, else the latest).")
@click.option("--week", type=int, help="Week of the period, 1.. (default: the current week).")
@click.option("--as", "username", help="Record the scan in the audit log as this user.")
@with_appcontext
def alerts_scan(period_code: str | None, week: int | None, username: str | None) -> None:
    """Evaluate the active alert rules on every unit; store and send the new alerts.

    Running it again for the same week adds nothing.
    """
    from quotaflow.services import alert_scan, alerts
    from quotaflow.services.tracking import TrackingError

    ctx = _context(username)
    try:
        result = alert_scan.run_scan(ctx, period_code, week, trigger="cli")
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    except (TrackingError, alert_scan.ScanError) as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{result.period} week {result.week}: {result.units} units, {result.hits} hit(s), "
               f"{len(result.raised)} new alert(s), {result.existing} already raised, "
               f"{result.suppressed} in cooldown (targets: plan #{result.plan_number}, "
               f"{result.targets_source})")
    for alert in alerts.alerts_by_ids(ctx, result.raised):
        click.echo(f"  [{alert.severity}] {alert.unit.code} {alert.rule}: {alert.message_en}")
        for remedy in alert.remedies:
            click.echo(f"      - {remedy['message_en']}")


@main.group("actuals")
def actuals_group() -> None:
    """Results during the quarter (per person and date)."""


@actuals_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "username", help="Record the import in the audit log as this user.")
@with_appcontext
def actuals_import(file: str, username: str | None) -> None:
    """Import actuals from a .csv or .xlsx (unit_code, date, value[, source, source_id])."""
    from quotaflow.services import actuals
    from quotaflow.services.spreadsheets import SheetImportError

    path = Path(file)
    ctx = _context()
    try:
        # The whole company (no scope), recorded in the audit log as --as USERNAME.
        result = actuals.import_file(ctx.session, _actor(username), None, path.read_bytes(),
                                     path.name)
    except SheetImportError as exc:
        for issue in exc.issues[:50]:
            where = f"{issue.column or ''}{issue.row or ''}" or "file"
            click.echo(f"{where}: {issue.code} {dict(issue.params)}", err=True)
        raise click.ClickException(f"{exc.total} problem(s); nothing was imported") from None
    click.echo(f"{result.records} record(s): {result.inserted} added, {result.updated} changed, "
               f"{result.unchanged} unchanged")


# -- periods ------------------------------------------------------------------------------------

@main.group("periods")
def periods_group() -> None:
    """Periods and the company's planning period (what commands plan for by default)."""


@periods_group.command("list")
@with_appcontext
def periods_list() -> None:
    """Every period, oldest first; the planning period is marked with *."""
    from quotaflow.services import periods

    ctx = _context()
    choice = periods.planning_choice(ctx)
    for period in periods.periods(ctx):
        mark = "*" if period.code == choice["period"] else " "
        click.echo(f"{mark} {period.code}  {period.start_date} .. {period.end_date}")
    if choice["period"] is None and choice["periods"]:
        click.echo("no planning period is chosen: run `quotaflow periods use CODE`", err=True)


@periods_group.command("use")
@click.argument("code")
@click.option("--as", "username", help="The acting user (needs period.plan: admin or hrbp; "
              "default: the system).")
@with_appcontext
def periods_use(code: str, username: str | None) -> None:
    """Make CODE the planning period (audited)."""
    from quotaflow.services import periods

    try:
        chosen = periods.set_planning_period(_context(username), code)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    click.echo(f"planning period: {chosen.code}")


# -- plans --------------------------------------------------------------------------------------

@main.group("plans")
def plans_group() -> None:
    """Plan versions of a period."""


@plans_group.command("emergency")
@click.option("--period", "period_code", required=True, help="Period code such as 2026Q4.")
@click.option("--freeze-city", "cities", multiple=True, help="A city to freeze (all its "
              "teams and people); repeat for more.")
@click.option("--freeze-unit", "units", multiple=True, help="A unit code to freeze "
              "(everything below it too); repeat for more.")
@click.option("--total", help="A new company total in yuan (default: unchanged).")
@click.option("--reason", required=True, help="Why (shown to the approvers).")
@click.option("--as", "username", required=True, help="The requesting user (needs the "
              "plan.emergency permission: admin, hrbp or executive).")
@click.option("--preview", "only_preview", is_flag=True, help="Show the recompute; submit "
              "nothing.")
@with_appcontext
def plans_emergency(period_code: str, cities: tuple[str, ...], units: tuple[str, ...],
                    total: str | None, reason: str, username: str, only_preview: bool) -> None:
    """Request an emergency recompute: frozen units keep their targets, the rest is re-run,
    the fast-track flow approves, then a new plan version is published."""
    from quotaflow.services import commands, emergency, emergency_reads, periods

    ctx = _context(username)
    try:
        period = periods.period(ctx, period_code)
    except QuotaFlowError as exc:
        raise _refused(exc) from None
    try:
        found = emergency_reads.preview(ctx, period, cities=cities, unit_codes=units,
                                        total=total)
        click.echo(f"{period.code} plan #{found.plan.number}: total {found.company_total:,}, "
                   f"planned {found.old_planned:,} -> {found.planned_total:,}; "
                   f"{found.changed} unit(s) change ({found.changed_people} people), "
                   f"{found.frozen_count} frozen; sums exact: {found.ok}")
        for r in found.regions:
            click.echo(f"  {r.code}: {r.old:,} -> {r.new:,} ({r.delta:+,})")
        if only_preview:
            return
        made = commands.request_emergency(ctx, period, reason=reason, cities=cities,
                                          unit_codes=units, total=total)
    except emergency.EmergencyError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"emergency recompute #{made.id} submitted; approval flow instance "
               f"#{made.flow_instance_id}")


# -- approval flows -----------------------------------------------------------------------------

@main.group("flows")
def flows_group() -> None:
    """Approval flows."""


@flows_group.command("tick")
@click.option("--now", "now_text", metavar="ISO-TIME",
              help="Act as if it were this UTC time (default: now).")
@with_appcontext
def flows_tick(now_text: str | None) -> None:
    """Remind, escalate or auto-approve overdue tasks (run it from a scheduler)."""
    import datetime as dt

    from quotaflow.services import flows, runtime

    now = None
    if now_text:
        try:
            now = dt.datetime.fromisoformat(now_text)
        except ValueError:
            raise click.ClickException(f"--now: not an ISO time: {now_text!r}") from None
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
    result = flows.run_tick(runtime.system(now))
    click.echo(f"ticked {len(result.ticked)} flow instance(s)")
    for instance_id, message in sorted(result.refused.items()):
        click.echo(f"  instance {instance_id}: refused: {message}", err=True)


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


# -- HR export ----------------------------------------------------------------------------------

@main.group("hr")
def hr_group() -> None:
    """Exports for the HR system."""


@hr_group.command("export")
@click.option("--period", "period_code", required=True, help="Period code, e.g. 2026Q4.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]),
              help="File format (default: from the output file's extension, else xlsx).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help='Output file ("-": standard output).')
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the headings and statuses.")
@with_appcontext
def hr_export_command(period_code: str, fmt: str | None, output: str, lang: str) -> None:
    """Final targets per person of the period's latest published plan (whole company)."""
    from flask_babel import force_locale

    from quotaflow.http.hr_texts import export_texts
    from quotaflow.services import hr_export

    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".")
        fmt = suffix if suffix in hr_export.FORMATS else "xlsx"
    with force_locale(lang):
        try:
            export = hr_export.build_export(_context(), period_code, lang=lang,
                                            texts=export_texts())
        except hr_export.HrExportError as exc:
            raise click.ClickException(exc.localized(lang)) from None
    data = hr_export.render(export, fmt)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(data)
    click.echo(f"{len(export.rows)} people, total {export.target_total:,} yuan, from plan "
               f"{export.plan.number} of {export.period.code} -> {output}", err=True)


# Needs no database: a plain click command, run without an app context.
main.add_command(allocate_command, "allocate")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
