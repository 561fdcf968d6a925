"""What the pages and the API say when input changes await approval (zh and en)."""

from __future__ import annotations

from flask_babel import gettext


def pending_message(flow_id: int | None) -> str:
    """One write's changes were not applied: they wait in an input change request."""
    return gettext("The plan of this period is published, so your change is not applied yet: "
                   "it awaits the HRBP's approval (input change request #%(id)s). The values "
                   "shown are unchanged until it is approved.", id=flow_id)


def pending_units_message(count: int) -> str:
    """An upload's changes of ``count`` units wait in input change requests."""
    return gettext("Units whose changes await the HRBP's approval (the period's plan is "
                   "published; not applied yet): %(num)s.", num=count)
