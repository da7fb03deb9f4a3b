"""Layouts: where everything sits on a 专票/普票/电子普票, a 全电 invoice and an English invoice (Style,
page_size, layout_*)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from samplegen.canvas import RGB, Canvas
from samplegen.invoices import FULLY_DIGITAL, CnInvoice, EnInvoice, Party
from samplegen.marks import draw_qr, draw_seal, render_seal
from samplegen.money import money

FORM_BROWN: RGB = (166, 84, 46)
FORM_RED: RGB = (150, 24, 24)
INK_BLACK: RGB = (20, 20, 20)
INK_BLUE: RGB = (30, 42, 112)
VALUE = 3.4  # mm: value text height (27 px at 200 dpi)
LABEL = 3.3


@dataclass
class Style:
    """How one invoice is drawn (varies per sample)."""

    paper: bool = False
    ink: RGB = INK_BLACK
    offset: tuple[float, float] = (0.0, 0.0)  # dot-matrix misalignment of all printed values (mm)
    seal_at: str = "remark"  # remark | seller_name | words
    seal_angle: float = 0.0
    copy_label: str = "发票联"
    holes: bool = False


def page_size(doc_type: str) -> tuple[float, float]:
    if doc_type in ("vat_special_paper", "vat_general_paper"):
        return 240.0, 146.0
    if doc_type == "vat_e_invoice_general":
        return 216.0, 140.0
    if doc_type in FULLY_DIGITAL:
        return 210.0, 140.0
    return 210.0, 297.0


def _fmt_date_cn(d: dt.date) -> str:
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def _grouped(check: str) -> str:
    return " ".join(check[i : i + 5] for i in range(0, 20, 5))


def supervision_seal(rng: random.Random, fully: bool) -> Image.Image:
    return render_seal(
        27 if fully else 30,
        18 if fully else 20,
        "全国统一发票监制章",
        "国家税务总局",
        "北京市税务局",
        rng,
        color=(226, 40, 50),
        middle_font="cjk",
        ring_mm=0.9 if fully else 0.7,
        ink=0.75,
    )


def seller_seal(inv: CnInvoice, rng: random.Random, angle: float) -> Image.Image:
    return render_seal(40, 28, inv.seller.name, inv.seller.tax_id, "发票专用章", rng, angle=angle, ink=0.85)


def layout_old_style(canvas: Canvas, inv: CnInvoice, style: Style, rng: random.Random) -> None:
    """Paper 专票/普票 and provincial 电子普通发票 (cn_034, cn_044, cn_045 style)."""
    W, H = page_size(inv.doc_type)
    paper = inv.doc_type != "vat_e_invoice_general"
    L, R = (14.0, 226.0) if paper else (7.7, 209.0)
    dy = 5.0 if paper else 0.0

    def X(v: float) -> float:  # map the 7.7..209 reference frame onto this page
        return L + (v - 7.7) * (R - L) / (209.0 - 7.7)

    def Y(v: float) -> float:
        return v + dy

    c = FORM_BROWN
    ink = style.ink
    ox, oy = style.offset

    def val(
        x: float, y: float, s: str, size: float = VALUE, font: str = "cjk", anchor: str = "lm", **kw: Any
    ):
        return canvas.text(x + ox, y + oy, s, size, ink, font, anchor, **kw)

    # paper furniture: sprocket holes, perforations, printer's imprint, copy label
    if style.holes:
        for y in np.arange(6.0, H - 3, 12.7):
            for x in (5.0, W - 5.0):
                canvas.rect(x - 2, y - 2, x + 2, y + 2, None, fill=(236, 236, 232))
                canvas.ellipse(x - 2, y - 2, x + 2, y + 2, (200, 200, 196), 0.2)
        for x in (10.0, W - 10.0):
            for y in np.arange(0, H, 3.0):
                canvas.line(x, y, x, y + 1.5, (190, 190, 186), 0.2)
    if paper:
        canvas.vtext(11.8, Y(36), Y(118), "税总函〔2019〕102号北京印钞有限公司", 2.6, c)
        copy_side = (
            "第三联：发票联  购买方记账凭证"
            if style.copy_label == "发票联"
            else "第二联：抵扣联  购买方扣税凭证"
        )
        canvas.vtext(W - 11.6, Y(36), Y(118), copy_side, 2.6, c)

    # header
    qr_x, qr_y, qr_size = (X(10.5), 4.0, 19.0) if paper else (11.3, 3.1, 20.0)
    draw_qr(canvas, qr_x, qr_y, qr_size, inv.qr_payload)
    canvas.text(W / 2, Y(11.3), inv.title, 7.4, c, anchor="mm")
    canvas.line(X(71.4), Y(18.0), X(144.7), Y(18.0), c, 0.35)
    canvas.line(X(71.4), Y(18.8), X(144.7), Y(18.8), c, 0.35)
    if paper:
        canvas.spread(W / 2 - 8, W / 2 + 8, Y(23.5), style.copy_label, 4.6, c)
        canvas.text(qr_x + qr_size + 3, 11.5, inv.code or "", 5.2, INK_BLACK, "mono")
        canvas.text(X(147.5), 11.5, "№", 5.2, c, "cjk")
        canvas.text(X(147.5) + 6.5, 11.5, inv.number, 5.6, INK_BLUE, "mono")
        # the small code/number printed by the tax software at the far right
        val(X(181.5), 8.8, inv.code or "", VALUE, "mono")
        val(X(181.5), 13.3, inv.number, VALUE, "mono")
        canvas.spread(X(150.5), X(164.5), Y(19.6), "开票日期", LABEL, c)
        canvas.text(X(164.8), Y(19.6), "：", LABEL, c)
        val(X(169.0), Y(19.6), _fmt_date_cn(inv.date))
        if inv.check_code:
            canvas.spread(X(150.5), X(164.5), Y(24.6), "校验码", LABEL, c)
            canvas.text(X(164.8), Y(24.6), "：", LABEL, c)
            val(X(169.0), Y(24.6), _grouped(inv.check_code), VALUE, "mono", max_width=R - X(169.0) + 2)
        if inv.machine_no:
            canvas.text(qr_x, qr_y + qr_size + 3.2, "机器编号：", LABEL, c)
            val(qr_x + 17, qr_y + qr_size + 3.2, inv.machine_no, VALUE, "mono")
    else:
        rows = [("发票代码", inv.code or ""), ("发票号码", inv.number), ("开票日期", _fmt_date_cn(inv.date))]
        if inv.check_code:
            rows.append(("校验码", _grouped(inv.check_code)))
        for i, (label, value) in enumerate(rows):
            y = 9.4 + 5.05 * i
            canvas.spread(149.5, 161.2, y, label, LABEL, c)
            canvas.text(161.4, y, "：", LABEL, c)
            font = "cjk" if "年" in value else "mono"
            val(164.4, y, value, VALUE, font, max_width=W - 164.6)
        if inv.machine_no:
            canvas.spread(8.6, 21.0, 25.9, "机器编号", LABEL, c)
            canvas.text(21.2, 25.9, "：", LABEL, c)
            val(24.5, 25.9, inv.machine_no, VALUE, "mono")

    # table frame
    top, buyer_b, items_b, sum_b, seller_b = Y(29.0), Y(51.0), Y(94.9), Y(103.1), Y(123.5)
    lw = 0.35
    canvas.rect(L, top, R, seller_b, c, 0.45)
    for y in (buyer_b, items_b, sum_b):
        canvas.line(L, y, R, y, c, lw)
    canvas.line(X(15.4), top, X(15.4), buyer_b, c, lw)
    canvas.line(X(15.4), sum_b, X(15.4), seller_b, c, lw)
    for x in (X(122.8), X(127.4)):
        canvas.line(x, top, x, buyer_b, c, lw)
        canvas.line(x, sum_b, x, seller_b, c, lw)
    cols = [X(v) for v in (59.6, 85.7, 97.6, 117.5, 137.6, 167.4, 178.5)]
    for x in cols:
        canvas.line(x, buyer_b, x, items_b, c, lw)
    canvas.line(cols[0], items_b, cols[0], sum_b, c, lw)

    def party(block_top: float, label: str, p: Party, rows_y: Sequence[float]) -> None:
        canvas.vtext((L + X(15.4)) / 2, block_top + 1.5, block_top + 20.5, label, LABEL, c)
        labels = [("名称", p.name, VALUE), ("纳税人识别号", p.tax_id, VALUE + 0.2)]
        labels += [("地址、电话", p.address_phone, 2.9), ("开户行及账号", p.bank_account, 2.9)]
        for (lab, value, size), y in zip(labels, rows_y, strict=True):
            canvas.spread(X(17.3), X(17.3) + 19.5, y, lab, LABEL, c)
            canvas.text(X(17.3) + 19.7, y, "：", LABEL, c)
            font = "mono" if lab == "纳税人识别号" else "cjk"
            val(X(17.3) + 23.5, y, value, size, font, max_width=X(122.3) - X(17.3) - 24, min_size=2.6)

    party(top, "购买方", inv.buyer, [Y(v) for v in (31.9, 37.2, 42.4, 47.6)])
    canvas.vtext((X(122.8) + X(127.4)) / 2, top + 2, buyer_b - 2, "密码区", LABEL, c)
    for i, line in enumerate(inv.cipher):
        y = Y(32.3 + 5.0 * i)
        x0, x1 = X(129.6) + ox, R - 1.8 + ox
        step = (x1 - x0) / len(line)
        for j, ch in enumerate(line):
            canvas.text(x0 + step * (j + 0.5), y + oy, ch, 3.6, ink, "mono", "mm")

    # items
    heads = ["货物或应税劳务、服务名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"]
    edges = [L, *cols, R]
    for i, head in enumerate(heads):
        x0, x1 = edges[i], edges[i + 1]
        if len(head) <= 2 and x1 - x0 > 14:
            gap = min(6.0, (x1 - x0) / 3)
            canvas.spread((x0 + x1) / 2 - gap - LABEL / 2, (x0 + x1) / 2 + gap, Y(53.8), head, LABEL, c)
        else:
            canvas.text((x0 + x1) / 2, Y(53.8), head, LABEL, c, anchor="mm", max_width=x1 - x0 - 1)
    for i, it in enumerate(inv.items):
        y = Y(58.6 + 5.2 * i)
        val(L + 0.8, y, it.name, VALUE, max_width=cols[0] - L - 1.5, min_size=2.9)
        val(cols[0] + 1.5, y, it.spec, VALUE - 0.2, "cjk", max_width=cols[1] - cols[0] - 2, min_size=2.6)
        val((cols[1] + cols[2]) / 2, y, it.unit, VALUE, anchor="mm")
        val(cols[3] - 1, y, it.quantity or "", VALUE, "mono", anchor="rm")
        val(
            cols[4] - 1, y, it.unit_price or "", VALUE, "mono", anchor="rm", max_width=cols[4] - cols[3] - 1.5
        )
        val(cols[5] - 1, y, money(it.amount), VALUE, "mono", anchor="rm")
        val((cols[5] + cols[6]) / 2, y, f"{it.rate}%", VALUE, "mono", anchor="mm")
        val(R - 1, y, money(it.tax), VALUE, "mono", anchor="rm")
    canvas.spread(X(24.0), X(48.0), Y(92.6), "合计", LABEL, c)
    val(cols[5] - 1, Y(92.6), f"¥{money(inv.amount)}", VALUE, "mono", anchor="rm")
    val(R - 1, Y(92.6), f"¥{money(inv.tax)}", VALUE, "mono", anchor="rm")

    # total row
    ty = Y(98.9)
    canvas.text((L + cols[0]) / 2, ty, "价税合计（大写）", LABEL, c, anchor="mm")
    val(cols[0] + 1.5, ty, "⊗", 4.0)
    val(cols[0] + 6.0, ty, inv.words, VALUE + 0.2)
    canvas.text(X(163.5), ty, "（小写）", LABEL, c)
    val(X(163.5) + 14.0, ty, f"¥{money(inv.total)}", VALUE + 0.2, "mono")

    party(sum_b, "销售方", inv.seller, [Y(v) for v in (106.2, 110.9, 115.7, 120.4)])
    canvas.vtext((X(122.8) + X(127.4)) / 2, sum_b + 3, seller_b - 3, "备注", LABEL, c)
    for i, line in enumerate(inv.remark):
        val(X(129.0), sum_b + 3.2 + 4.5 * i, line, 2.9, max_width=R - X(129.0) - 1)

    # signatures
    by = Y(126.6)
    for label, name, x_lab, x_val in (
        ("收款人", inv.payee, 11.0, 28.2),
        ("复核", inv.reviewer, 69.8, 81.6),
        ("开票人", inv.drawer, 112.2, 129.4),
    ):
        canvas.spread(X(x_lab), X(x_lab) + (13 if len(label) == 3 else 8), by, label, LABEL, c)
        canvas.text(X(x_lab) + (13.2 if len(label) == 3 else 8.2), by, "：", LABEL, c)
        val(X(x_val), by, name)
    canvas.spread(X(156.1), X(156.1) + 13, by, "销售方", LABEL, c)
    canvas.text(X(156.1) + 13.2, by, "：（章）", LABEL, c)

    # stamps
    draw_seal(canvas, W / 2 + 1, Y(17.0), supervision_seal(rng, False))
    seal = seller_seal(inv, rng, style.seal_angle)
    if style.seal_at == "seller_name":
        draw_seal(canvas, X(17.3) + 23.5 + 28, Y(114.5), seal)
    elif style.seal_at == "words":
        draw_seal(canvas, cols[0] + 30, Y(99.0), seal)
    else:
        draw_seal(canvas, X(188.3), Y(121.5), seal)


def layout_fully_digital(canvas: Canvas, inv: CnInvoice, style: Style, rng: random.Random) -> None:
    """全电 电子发票（普通发票） / 电子发票（增值税专用发票） (cn_037, cn_055 style)."""
    W, _H = page_size(inv.doc_type)
    c = FORM_RED
    ink = style.ink
    L, R = 4.4, 205.5

    def val(
        x: float, y: float, s: str, size: float = VALUE, font: str = "cjk", anchor: str = "lm", **kw: Any
    ):
        return canvas.text(x, y, s, size, ink, font, anchor, **kw)

    draw_qr(canvas, 6.3, 5.9, 20.0, inv.qr_payload)
    canvas.text(W / 2 - 2.6, 11.3, inv.title, 7.2, c, anchor="mm")
    canvas.line(65.6, 18.1, 138.3, 18.1, c, 0.3)
    canvas.line(65.6, 19.0, 138.3, 19.0, c, 0.3)
    canvas.text(154.7, 12.8, "发票号码：", LABEL, c)
    val(170.4, 12.8, inv.number, VALUE, "mono", max_width=W - 171)
    canvas.text(154.7, 18.8, "开票日期：", LABEL, c)
    val(170.4, 18.8, _fmt_date_cn(inv.date))

    top, party_b, items_b, sum_b, remark_b = 30.0, 51.9, 95.8, 103.8, 123.8
    canvas.rect(L, top, R, remark_b, c, 0.4)
    for y in (party_b, items_b, sum_b):
        canvas.line(L, y, R, y, c, 0.3)
    for x in (10.6, 105.0, 111.3):
        canvas.line(x, top, x, party_b, c, 0.3)
    canvas.line(56.6, items_b, 56.6, sum_b, c, 0.3)
    canvas.line(10.6, sum_b, 10.6, remark_b, c, 0.3)

    def party(x_vcol: float, x_lab: float, label: str, p: Party, right: float) -> None:
        canvas.vtext(x_vcol, top + 1.5, party_b - 1.5, label, LABEL - 0.2, c)
        canvas.text(x_lab, 35.3, "名称：", LABEL, c)
        val(x_lab + 10.2, 35.3, p.name, VALUE, max_width=right - x_lab - 11)
        w = canvas.text(x_lab, 46.0, "统一社会信用代码/纳税人识别号：", 2.9, c)
        val(x_lab + w + 0.3, 46.0, p.tax_id, 4.0, "mono", max_width=right - x_lab - w - 1, min_size=3.4)

    party((L + 10.6) / 2, 11.7, "购买方信息", inv.buyer, 104.5)
    party((105.0 + 111.3) / 2, 112.1, "销售方信息", inv.seller, R - 0.5)

    heads = [("项目名称", 21.9), ("规格型号", 48.1), ("单位", 71.6), ("数量", 97.7), ("单价", 122.4),
             ("金额", 148.2), ("税率/征收率", 166.1), ("税额", 198.5)]  # fmt: skip
    for head, x in heads:
        if len(head) == 2:
            canvas.spread(x - 4.5, x + 4.5, 54.7, head, LABEL, c)
        else:
            canvas.text(x, 54.7, head, LABEL, c, anchor="mm")
    for i, it in enumerate(inv.items):
        y = 58.9 + 5.0 * i
        val(L + 0.4, y, it.name, VALUE, max_width=40.0, min_size=2.9)
        val(41.0, y, it.spec, VALUE - 0.2, max_width=24, min_size=2.6)
        val(71.6, y, it.unit, VALUE, anchor="mm")
        val(102.4, y, it.quantity or "", VALUE, "mono", anchor="rm")
        val(105.5, y, it.unit_price or "", VALUE, "mono", max_width=33, min_size=2.6)
        val(153.5, y, money(it.amount), VALUE, "mono", anchor="rm")
        val(166.4, y, f"{it.rate}%", VALUE, "mono", anchor="mm")
        val(R - 0.6, y, money(it.tax), VALUE, "mono", anchor="rm")
    canvas.spread(20.8, 39.0, 93.3, "合计", LABEL, c)
    val(153.5, 93.3, f"¥{money(inv.amount)}", VALUE, "mono", anchor="rm")
    val(R - 0.6, 93.3, f"¥{money(inv.tax)}", VALUE, "mono", anchor="rm")

    canvas.text((L + 56.6) / 2, 99.8, "价税合计（大写）", LABEL, c, anchor="mm")
    val(59.9, 99.8, "⊗", 4.2)
    val(64.6, 99.8, inv.words, VALUE + 0.2)
    canvas.text(144.0, 99.8, "（小写）", LABEL, c)
    val(157.4, 99.8, f"¥{money(inv.total)}", VALUE + 0.4, "mono")

    canvas.vtext((L + 10.6) / 2, sum_b + 4, remark_b - 4, "备注", LABEL, c)
    for i, line in enumerate(inv.remark):
        val(11.6, sum_b + 3.4 + 4.4 * i, line, 2.9, max_width=R - 12.5)
    canvas.text(19.7, 131.0, "开票人：", LABEL, c)
    val(33.0, 131.0, inv.drawer)
    draw_seal(canvas, W / 2 - 2.6, 20.4, supervision_seal(rng, True))


def layout_english(canvas: Canvas, inv: EnInvoice) -> None:
    v = inv.vendor
    accent: RGB = (38, 70, 120)
    grey: RGB = (90, 90, 90)
    body = 3.8
    canvas.text(18, 24, v["name"], 6.0, accent, "sans_bold", "ls")
    for i, line in enumerate(v["address"]):
        canvas.text(18, 32 + 5.2 * i, line, body, INK_BLACK, "sans", "ls")
    canvas.text(18, 32 + 5.2 * 3, f"{v['tax_id_label']}: {inv.vendor_tax_id}", body, INK_BLACK, "sans", "ls")
    canvas.text(192, 24, "INVOICE", 9.0, accent, "sans_bold", "rs")
    fmt = v["date_fmt"]
    meta = [
        ("Invoice No:", inv.number),
        ("Invoice Date:", inv.date.strftime(fmt)),
        ("Due Date:", inv.due.strftime(fmt)),
        ("Currency:", v["currency"]),
    ]
    for i, (label, value) in enumerate(meta):
        y = 38 + 6.2 * i
        canvas.text(132, y, label, body, grey, "sans", "ls")
        canvas.text(192, y, value, body, INK_BLACK, "sans", "rs")
    canvas.text(18, 72, "Bill To", body, accent, "sans_bold", "ls")
    name, addr = inv.customer
    canvas.text(18, 78.5, name, body, INK_BLACK, "sans", "ls")
    for i, line in enumerate(addr):
        canvas.text(18, 84 + 5.2 * i, line, body, INK_BLACK, "sans", "ls")

    y0 = 112
    canvas.rect(16, y0 - 6.5, 194, y0 + 2.5, None, fill=(226, 232, 242))
    for label, x, anchor in (("Description", 18, "ls"), ("Qty", 120, "rs"), ("Unit Price", 156, "rs"),
                             ("Amount", 192, "rs")):  # fmt: skip
        canvas.text(x, y0, label, body, INK_BLACK, "sans_bold", anchor)
    sym = v["symbol"]
    y = y0
    for desc, qty, price, amount in inv.lines:
        y += 10
        canvas.text(18, y, desc, body, INK_BLACK, "sans", "ls")
        canvas.text(120, y, str(qty), body, INK_BLACK, "sans", "rs")
        canvas.text(156, y, f"{sym}{price:,.2f}", body, INK_BLACK, "sans", "rs")
        canvas.text(192, y, f"{sym}{amount:,.2f}", body, INK_BLACK, "sans", "rs")
        canvas.line(16, y + 3.5, 194, y + 3.5, (205, 205, 205), 0.2)
    y += 14
    rate = f"{v['rate'].normalize():f}"
    totals = [
        ("Subtotal", f"{sym}{inv.subtotal:,.2f}", "sans"),
        (f"{v['tax_label']} ({rate}%)", f"{sym}{inv.tax:,.2f}", "sans"),
        (f"Total ({v['currency']})", f"{sym}{inv.total:,.2f}", "sans_bold"),
    ]
    for i, (label, value, font) in enumerate(totals):
        yy = y + 7 * i + (2 if i == 2 else 0)
        if i == 2:
            canvas.line(120, yy - 6, 194, yy - 6, INK_BLACK, 0.35)
        canvas.text(124, yy, label, body, INK_BLACK, font, "ls")
        canvas.text(192, yy, value, body, INK_BLACK, font, "rs")
    fy = 250
    canvas.line(16, fy - 8, 194, fy - 8, (180, 180, 180), 0.3)
    canvas.text(18, fy, f"Payment terms: {(inv.due - inv.date).days} days net.", body, grey, "sans", "ls")
    canvas.text(18, fy + 6, "Thank you for your business.", body, grey, "sans", "ls")
