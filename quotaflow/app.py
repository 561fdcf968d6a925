"""The application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from quotaflow.config import load_config
from quotaflow.extensions import babel, csrf, login_manager
from quotaflow.i18n import select_locale
from quotaflow.services import registry, upload_reader
from quotaflow.store import db


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create a QuotaFlow app; ``config`` overrides what the environment says."""
    # Every declared flow handler must import: a broken one stops the start-up here
    # (before anything is set up), not an approval months later.
    registry.check()
    instance_path = os.environ.get("QUOTAFLOW_INSTANCE_PATH")
    app = Flask(
        "quotaflow",
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
    upload_reader.configure(app.config)  # UPLOAD_MAX_CELLS, UPLOAD_MAX_CELL_CHARS ...

    from quotaflow.http.bodies import init_bodies
    from quotaflow.http.errors import init_api_errors

    init_bodies(app)
    init_api_errors(app)
    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    login_manager.init_app(app)

    from quotaflow.api import api_blueprint
    from quotaflow.web import init_web

    init_web(app)
    app.register_blueprint(api_blueprint)
    csrf.exempt(api_blueprint)  # the API checks CSRF itself for cookie sessions
    if app.config.get("ALERT_SCHEDULE"):
        from quotaflow.services.jobs import start_scheduler

        start_scheduler(app)  # one thread per process; a job lease picks who scans
    return app
