"""A commitment letter as PDF (bilingual), with a subset of a CJK font embedded so the
Chinese renders everywhere and the text can be extracted and searched.

The font is a TrueType-outline CJK font from Debian's packages, found at known paths
(``fonts-wqy-zenhei`` first) unless ``QUOTAFLOW_PDF_FONT`` names a .ttf/.ttc/.otf file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_ENV = "QUOTAFLOW_PDF_FONT"
FONT_PACKAGE = "fonts-wqy-zenhei"
#: Debian paths tried in order: TrueType outlines first (clean text extraction); Noto CJK
#: (CFF outlines) renders too but extracts with spaces between the characters.
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
FONT = "cjk"


class FontMissingError(RuntimeError):
    """No usable CJK font: the message names the package to install."""


def find_font(override: str | None = None) -> Path:
    """The CJK font file: ``override``, else ``$QUOTAFLOW_PDF_FONT``, else a known path."""
    chosen = override or os.environ.get(FONT_ENV)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise FontMissingError(
                f"{FONT_ENV} names {chosen}, which is not a font file; point it at a "
                f".ttf/.ttc/.otf CJK font or unset it and install the Debian package "
                f"{FONT_PACKAGE}")
        return path
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FontMissingError(
        f"no CJK font for PDF letters: install the Debian package {FONT_PACKAGE} "
        f"(apt-get install {FONT_PACKAGE}) or set {FONT_ENV} to a .ttf/.ttc/.otf CJK font")


def yuan(amount: int | None) -> str:
    return "—" if amount is None else f"{int(amount):,}"


def signed_yuan(amount: int) -> str:
    return f"+{amount:,}" if amount > 0 else f"{amount:,}"


@dataclass(frozen=True)
class SignatureLine:
    role: str  # person / manager
    name: str | None
    username: str | None
    signed_at: str | None  # ISO, UTC
    content_sha256: str | None


STATUS_TEXT = {"issued": "待签字 Awaiting signature", "signed": "已签字 Signed",
               "countersigned": "已会签 Countersigned", "superseded": "已作废 Superseded"}


class _Card(FPDF):
    def __init__(self, font: Path, letter_id: int, sha: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.letter_id = letter_id
        self.sha = sha
        kwargs: dict[str, Any] = {}
        if font.suffix.lower() == ".ttc":
            kwargs["collection_font_number"] = 0
        self.add_font(FONT, fname=str(font), **kwargs)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(16, 13, 16)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, size=7)
        self.set_text_color(110)
        self.cell(0, 4, f"内容 SHA-256 Content hash: {self.sha}", align="L")
        self.cell(0, 4, f"#{self.letter_id} · {self.page_no()}/{{nb}}", align="R",
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font(FONT, size=11)
        self.set_fill_color(235, 240, 248)
        self.cell(0, 6.5, text, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(0.5)
        self.set_font(FONT, size=9)

    def row(self, cells: Sequence[tuple[str, float, str]], *, bold: bool = False,
            height: float = 5) -> None:
        self.set_font(FONT, size=10 if bold else 9)
        for text, width, align in cells:
            self.cell(width, height, text, border="B", align=align)
        self.ln(height)


def render_letter_pdf(content: Mapping[str, Any], *, letter_id: int, content_sha256: str,
                      status: str, signatures: Sequence[SignatureLine],
                      font: str | None = None) -> bytes:
    """The card as a PDF (A4, bilingual). Raises FontMissingError without a CJK font."""
    pdf = _Card(find_font(font), letter_id, content_sha256)
    pdf.set_title(f"目标责任书 KPI Commitment Letter {content['unit']['code']} "
                  f"{content['plan']['period']}")
    pdf.set_creator("QuotaFlow")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    unit, team, plan = content["unit"], content.get("team") or {}, content["plan"]
    pdf.set_font(FONT, size=18)
    pdf.cell(0, 10, "目标责任书  KPI Commitment Letter", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=10)
    person = content.get("person") or {}
    lines = [
        f"姓名 Name: {unit['name_zh']} / {unit['name_en']} ({unit['code']})"
        + (f" · {person['username']}" if person.get("username") else ""),
        f"团队 Team: {team.get('name_zh', '')} / {team.get('name_en', '')} "
        f"({team.get('code', '')})",
        f"考核期 Period: {plan['period']} ({plan['start']} – {plan['end']}) · "
        f"方案 Plan #{plan['number']} · 版本 Version {content['version']}",
        f"发布时间 Issued: {content['issued_at']} · 状态 Status: "
        f"{STATUS_TEXT.get(status, status)}",
    ]
    for line in lines:
        pdf.cell(0, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.heading("目标 Target")
    pdf.set_font(FONT, size=20)
    pdf.cell(0, 10, f"{yuan(content['target'])} 元 (CNY)", new_x=XPos.LMARGIN,
             new_y=YPos.NEXT)

    split = content.get("split") or {}
    method = ("按节奏曲线 by pacing curve" if split.get("method") == "pacing_curve"
              else "按天数 by days")
    pdf.heading(f"月度分解 Monthly split ({method})")
    w = (width * 0.4, width * 0.2, width * 0.4)
    pdf.row([("月份 Month", w[0], "L"), ("天数 Days", w[1], "R"),
             ("金额（元） Amount (yuan)", w[2], "R")], bold=True)
    for m in content["months"]:
        pdf.row([(m["month"], w[0], "L"), (str(m["days"]), w[1], "R"),
                 (yuan(m["amount"]), w[2], "R")])
    pdf.row([("合计 Total", w[0], "L"), ("", w[1], "R"),
             (yuan(sum(m["amount"] for m in content["months"])), w[2], "R")], bold=True)

    pdf.heading("周分解 Weekly split")
    w = (width * 0.15, width * 0.45, width * 0.4)
    pdf.row([("周 Week", w[0], "L"), ("日期 Dates", w[1], "L"),
             ("金额（元） Amount (yuan)", w[2], "R")], bold=True)
    for week in content["weeks"]:
        pdf.row([(str(week["week_no"]), w[0], "L"), (f"{week['start']} – {week['end']}",
                                                     w[1], "L"),
                 (yuan(week["amount"]), w[2], "R")], height=4.4)
    pdf.row([("合计 Total", w[0], "L"), ("", w[1], "L"),
             (yuan(sum(x["amount"] for x in content["weeks"])), w[2], "R")], bold=True)

    d = content["derivation"]
    pdf.heading("目标推导 Derivation")
    w = (width * 0.5, width * 0.15, width * 0.35)
    pdf.row([("项目 Line", w[0], "L"), ("权重 Weight", w[1], "R"),
             ("金额（元） Amount (yuan)", w[2], "R")], bold=True)
    for f in d["factors"]:
        pdf.row([(f"{f['label_zh']} {f['label_en']}", w[0], "L"),
                 (f"{f['weight_percent']:g}%", w[1], "R"), (yuan(f["amount"]), w[2], "R")])
    if d.get("factors_total") is not None:
        pdf.row([("因子合计 From the factors", w[0], "L"), ("", w[1], "R"),
                 (yuan(d["factors_total"]), w[2], "R")])
    pdf.row([("上下限调整 Bounds adjustment", w[0], "L"), ("", w[1], "R"),
             (signed_yuan(d["bounds_adjustment"]), w[2], "R")])
    pdf.row([("取整调整 Rounding", w[0], "L"), ("", w[1], "R"),
             (signed_yuan(d["rounding_adjustment"]), w[2], "R")])
    pdf.row([("目标 Target", w[0], "L"), ("", w[1], "R"), (yuan(d["target"]), w[2], "R")],
            bold=True)
    model = content.get("model") or {}
    pdf.set_font(FONT, size=8)
    pdf.cell(0, 5, f"因子模型 Factor model {model.get('key', '')} v{model.get('version', '')}",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    if pdf.get_y() + 32 > pdf.page_break_trigger:
        pdf.add_page()  # keep the signature block whole
    pdf.heading("签字 Signatures")
    roles = {"person": "本人承诺 I commit", "manager": "主管会签 Manager countersignature"}
    by_role = {s.role: s for s in signatures}
    top = pdf.get_y()
    half = width / 2
    bottom = top
    for i, role in enumerate(("person", "manager")):  # side by side, like signature lines
        sig = by_role.get(role)
        x = pdf.l_margin + i * half
        pdf.set_xy(x, top)
        pdf.set_font(FONT, size=10)
        pdf.cell(half - 3, 6, roles[role], new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(FONT, size=9)
        if sig is None or sig.signed_at is None:
            pdf.cell(half - 3, 5, "待签 Not signed yet", new_x=XPos.LEFT, new_y=YPos.NEXT)
        else:
            pdf.cell(half - 3, 5, f"签字人 Signed by: {sig.name} ({sig.username})",
                     new_x=XPos.LEFT, new_y=YPos.NEXT)
            pdf.cell(half - 3, 5, f"时间 At: {sig.signed_at} UTC", new_x=XPos.LEFT,
                     new_y=YPos.NEXT)
            pdf.set_font(FONT, size=6.5)
            pdf.multi_cell(half - 3, 3.4, f"所签内容 SHA-256 Signed content hash: "
                           f"{sig.content_sha256}", align="L", new_x=XPos.LEFT,
                           new_y=YPos.NEXT)
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(pdf.l_margin, bottom)
    return bytes(pdf.output())
