"""The main menu: grouped for people with many pages, plain links for people with few."""

from __future__ import annotations

import re

from flask import url_for

from quotaflow.services.auth import principal_for
from quotaflow.store import db
from quotaflow.store.models import User
from quotaflow.web.navigation import NAV_ITEMS, NavGroup, NavItem, navigation_for


def _menu(username: str, app) -> list:
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        return navigation_for(principal_for(user))


def test_every_menu_item_opens_for_someone_allowed(app, as_user) -> None:
    people = ("admin", "hrbp", "ceo", "head.east", "lead.east.t1", "sales.p0001")
    with app.app_context():
        principals = {u: principal_for(db.session.query(User).filter_by(username=u).one())
                      for u in people}
    with app.test_request_context():
        urls = {item.endpoint: url_for(item.endpoint) for item in NAV_ITEMS}
    for item in NAV_ITEMS:
        allowed = [u for u in people if principals[u].has(item.permission)]
        assert allowed, item.endpoint
        response = as_user(allowed[0]).get(urls[item.endpoint], follow_redirects=True)
        assert response.status_code == 200, (item.endpoint, allowed[0])


def test_many_pages_are_grouped_and_a_lone_item_is_a_plain_link(app) -> None:
    hrbp = _menu("hrbp", app)
    groups = {e.key: [i.endpoint for i in e.items] for e in hrbp if isinstance(e, NavGroup)}
    assert groups["settings"] == ["builder.overview", "config.index", "inbox.outbox_status",
                                  "pages.audit_log"]
    assert "plans.plan_list" in groups["targets"]
    sales = _menu("sales.p0001", app)
    # A sales person's "Progress" group would hold Alerts alone: it becomes a link.
    assert all(len(e.items) >= 2 for e in sales if isinstance(e, NavGroup))
    assert any(isinstance(e, NavItem) and e.endpoint == "alerts.alerts_page" for e in sales)
    assert not any(isinstance(e, NavItem) and e.endpoint == "config.index" for e in sales)


def test_the_group_of_the_current_page_is_marked(as_user) -> None:
    html = as_user("admin").get("/alerts/").get_data(as_text=True)
    marked = re.findall(r'<summary class="here">([^<]+)</summary>', html)
    assert marked == ["Progress"]
    assert '<a href="/alerts/" aria-current="page">Alerts</a>' in html
