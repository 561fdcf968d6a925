"""Issue 5's Done-when, end to end in a real browser, through the pages only:

the HRBP publishes a plan -> the East region head freezes a what-if as evidence, opens
the appeal form from it and appeals its target with one more file (more than 5% up) -> the flow asks the HRBP *and* the CFO (countersign, 会签) -> both
approve on their task pages -> a new plan version; its diff shows East and the re-spread
siblings -> the other regions accept, East's teams accept (the region head answers for
the teams without a lead of their own, with "accept all") -> the people of EAST-T1
accept (the person themself, the team lead for the rest, with "accept all") -> the
person signs "I commit", the team lead countersigns -> the PDF downloads and reads, in
Chinese, the target and the signatures.

The only service call makes the test's own period (a copy of the demo's inputs): no page
creates a period, and confirmation state is per period, so the demo's stays untouched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from browser_support import sign_in, switch_language
from confirm_support import fresh_period
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from quotaflow.store import db

TOTAL = "249500000"
OTHER_REGIONS = {"head.south": "SOUTH", "head.north": "NORTH", "head.central": "CENTRAL",
                 "head.west": "WEST", "head.ne": "NE"}
EAST_LEADS = (("lead.east.t1", "EAST-T1"), ("lead.east.t2", "EAST-T2"),
              ("lead.east.t6", "EAST-T6"))


@pytest.fixture
def period_code(app: Any) -> str:
    with app.app_context():
        return fresh_period(db.session).code


@contextmanager
def signed_in(browser: Browser, live_server: str, username: str) -> Iterator[Page]:
    """A page of ``username`` in its own browser context, in English."""
    context = browser.new_context(base_url=live_server, locale="en-US",
                                  viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        tab = context.new_page()
        sign_in(tab, username)
        switch_language(tab, "en")
        yield tab
    finally:
        context.close()


def yuan(text: str) -> int:
    return int(re.sub(r"[^\d-]", "", text))


def accept_row(page: Page, period: str, code: str) -> None:
    page.goto(f"/confirm?period={period}")
    row = page.get_by_test_id(f"item-{code}")
    row.get_by_role("button", name="Accept").click()
    expect(row).to_contain_text("Accepted")  # swapped in place (htmx)


def accept_all(page: Page, period: str, count: int) -> None:
    page.goto(f"/confirm?period={period}")
    expect(page.get_by_test_id("accept-all")).to_have_text(f"Accept all {count}")
    page.get_by_test_id("accept-all-reviewed").check()
    page.get_by_test_id("accept-all").click()
    expect(page.locator(".flash.success")).to_contain_text(f"You accepted {count} targets")


def pending_task_links(page: Page) -> list[str]:
    page.goto("/tasks")
    return page.locator('[data-testid="pending-tasks"] a').evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")


def test_publish_appeal_countersign_confirm_sign_and_pdf(
    page: Page, browser: Browser, live_server: str, period_code: str
) -> None:
    period = period_code
    # -- The HRBP saves a plan for the period and publishes it on the plan page.
    sign_in(page, "hrbp")
    switch_language(page, "en")
    page.goto("/plans/simulate")
    page.select_option("#period", period)
    page.fill("#total", TOTAL)
    page.locator("#simulate-form button[type=submit]").click()
    page.get_by_test_id("save-balanced").click()
    expect(page.get_by_test_id("plan-title")).to_be_visible()
    plan_id = int(re.search(r"/plans/(\d+)", page.url).group(1))
    page.get_by_test_id("publish").click()
    expect(page.locator(".flash.success")).to_contain_text("published")
    expect(page.get_by_test_id("publish")).to_have_count(0)

    # -- The East region head freezes a what-if as evidence and opens the appeal form
    #    from it (the snapshot comes pre-attached), then asks for the top of the range
    #    with a reason and one more file.
    with signed_in(browser, live_server, "head.east") as head:
        head.goto(f"/whatif/EAST?plan={plan_id}")
        head.get_by_test_id("attach").click()
        snapshot = head.get_by_test_id("evidence-file").inner_text()
        head.get_by_test_id("appeal-link").click()
        expect(head.locator(".form-file-current")).to_have_text(snapshot)
        allocated = yuan(head.get_by_test_id("allocated").inner_text())
        requested = int(head.locator("#f-requested").get_attribute("max"))
        assert requested > allocated * 1.05  # more than 5%: a countersign
        head.fill("#f-requested", str(requested))
        expect(head.get_by_test_id("requested-check")).to_contain_text(f"{requested - allocated:,}")
        head.fill("#f-reason", "Two new key accounts in Suzhou signed framework agreements.")
        head.set_input_files("#evidence", files=[{
            "name": "east-accounts.csv", "mimeType": "text/csv",
            "buffer": b"account,annual value\nSuzhou Precision,12000000\n"}])
        head.get_by_role("button", name="Send the appeal").click()
        expect(head.locator(".flash.success")).to_contain_text("sent for approval")
        row = head.get_by_test_id("item-EAST")
        expect(row).to_contain_text("Appeal under review")
        row.get_by_role("link", name="View the appeal").click()
        expect(head.get_by_test_id("appeal-status")).to_have_text("Under review")
        expect(head.get_by_role("link", name="east-accounts.csv")).to_be_visible()
        expect(head.get_by_role("link", name=snapshot)).to_be_visible()
        flow_url = head.get_by_test_id("flow-link").get_attribute("href")
        appeal_url = head.url.removeprefix(live_server)

    # -- Countersign: both the HRBP and the CFO have the task; the fallback does not.
    assert flow_url in pending_task_links(page)
    with signed_in(browser, live_server, "admin") as admin:
        assert flow_url not in pending_task_links(admin)
    page.goto(flow_url)
    page.get_by_test_id("subject-link").click()  # the approver reads the evidence first
    expect(page.get_by_role("link", name="east-accounts.csv")).to_be_visible()
    page.goto(flow_url)
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("flow-done")).to_be_visible()
    # One of two approvals: still running, the CFO's task is open.
    expect(page.get_by_test_id("instance-status")).to_have_text("In progress")
    assert flow_url not in pending_task_links(page)
    with signed_in(browser, live_server, "cfo") as cfo:
        assert flow_url in pending_task_links(cfo)
        cfo.goto(flow_url)
        cfo.get_by_test_id("approve").click()
        expect(cfo.get_by_test_id("instance-status")).to_have_text("Approved")

    # -- Approved: a new plan version; its diff shows East and the re-spread siblings.
    page.goto(appeal_url)
    expect(page.get_by_test_id("appeal-status")).to_have_text("Approved")
    expect(page.get_by_test_id("decision")).to_contain_text(f"{requested:,}")
    # The published version the HRBP opened is superseded: it points at the new one.
    page.goto(f"/plans/{plan_id}")
    page.get_by_test_id("superseded-by").get_by_role("link", name="What changed").click()
    expect(page.get_by_test_id("diff-title")).to_contain_text(period)
    expect(page.locator("#against")).to_have_value(str(plan_id))
    east = page.get_by_test_id("changed-EAST").locator("td")
    assert yuan(east.nth(2).inner_text()) == allocated
    assert yuan(east.nth(3).inner_text()) == requested
    changes = dict(page.locator('tr[data-testid^="changed-"]').evaluate_all(
        "rows => rows.map(r => [r.dataset.testid.slice(8), r.cells[4].textContent])"))
    siblings = {code: yuan(changes[code]) for code in ("SOUTH", "NORTH", "CENTRAL", "WEST", "NE")
                if code in changes}
    assert len(siblings) >= 2 and all(v < 0 for v in siblings.values()), siblings
    assert sum(siblings.values()) == -(requested - allocated)  # the siblings absorb it
    expect(page.get_by_test_id("changed-HQ")).to_have_count(0)  # the company total holds

    # -- The other regions accept their re-spread targets: the region level settles.
    for username, code in OTHER_REGIONS.items():
        with signed_in(browser, live_server, username) as head:
            head.goto(f"/confirm?period={period}")
            rows = head.get_by_test_id("my-confirmations").locator("tr[data-testid^=item-]")
            expect(rows).to_have_count(1)
            if code in siblings:  # the head is told what changed
                expect(rows.first).to_contain_text("Changed from")
            rows.first.get_by_role("button", name="Accept").click()
            expect(rows.first).to_contain_text("Accepted")

    # -- East's teams: three leads accept their own; the region head answers for the
    #    three teams without a lead (EAST-T3..T5) at once.
    for username, code in EAST_LEADS:
        with signed_in(browser, live_server, username) as lead:
            accept_row(lead, period, code)
    with signed_in(browser, live_server, "head.east") as head:
        accept_all(head, period, 3)

    # -- EAST-T1's people: P0001 accepts their own; the lead answers for the other 15.
    with signed_in(browser, live_server, "sales.p0001") as person:
        accept_row(person, period, "P0001")
    with signed_in(browser, live_server, "lead.east.t1") as lead:
        accept_all(lead, period, 15)

    # -- The card: the person commits, the lead countersigns, the PDF reads in Chinese.
    with signed_in(browser, live_server, "sales.p0001") as person:
        person.goto("/letters")
        card = person.get_by_test_id("letter-card")
        expect(card).to_contain_text(period)
        target = yuan(card.get_by_test_id("letter-target").inner_text())
        person.once("dialog", lambda dialog: dialog.accept())  # "Commit to a target of ...?"
        card.get_by_test_id("sign").click()
        expect(card.get_by_test_id("letter-status")).to_have_text(
            "Signed, awaiting countersignature")
        letter_id = card.get_attribute("data-letter-id")
    with signed_in(browser, live_server, "lead.east.t1") as lead:
        lead.goto("/letters")
        row = lead.locator(f'[data-testid="team-letters"] tr[data-letter-id="{letter_id}"]')
        row.get_by_test_id("countersign").click()
        expect(row.get_by_test_id("row-status")).to_have_text("Countersigned")
        with lead.expect_download() as info:
            row.get_by_role("link", name="PDF").click()
        download = info.value
        assert download.suggested_filename == f"letter-P0001-{period}-v1.pdf"
        data = Path(download.path()).read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    for label in ("目标", "签字", "本人承诺", "主管会签", "已会签"):
        assert label in text, label
    assert f"{target:,}" in text
    assert "P0001" in text and period in text
