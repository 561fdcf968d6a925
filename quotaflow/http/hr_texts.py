"""The HR export's words in the reader's language, shared by the page, the API and the CLI."""

from __future__ import annotations

from flask_babel import gettext

from quotaflow.services import hr_export


def export_texts() -> hr_export.HrExportTexts:
    """The export's words in the current language (the page's, or the CLI's forced one)."""
    return hr_export.HrExportTexts(
        sheet=gettext("Targets"), code=gettext("Person code"), name=gettext("Full name"),
        level_code=gettext("%(level)s code"), target=gettext("Target (yuan)"),
        period=gettext("Period"), plan=gettext("Plan"), letter=gettext("Commitment letter"),
        letter_states={
            "none": gettext("Not issued"), "issued": gettext("Awaiting signature"),
            "signed": gettext("Signed, awaiting countersignature"),
            "countersigned": gettext("Countersigned"),
            "outdated": gettext("Outdated: the target changed")})
