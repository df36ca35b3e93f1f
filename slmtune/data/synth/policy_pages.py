"""Synthetic crawled government policy pages labelled {title, publishtime, content}.

The page text is what a crawler gets, assembled from parts that sites place differently:
navigation, a breadcrumb (with or without the title), a list of other documents with their
dates, a metadata table (成文日期 and 发布日期 in mixed date formats; sometimes the title in
it) or a one-line source/date under the title, the issuing office's header line above the
title (…文件, a gazette's name and issue), an addressee line, the body (mostly over several
lines: paragraphs, numbered sections or articles, a PDF's fixed-width wrap), the office's
signature and date under it, attachments, editor and related links, share and print
buttons, and a footer with 主办单位, ICP and 公安 filing numbers and phone numbers. Lines
may be flattened onto one.
Rule for the label: `publishtime` is the 发布日期/发布时间 of the page, normalised to
YYYY-MM-DD (成文日期, the drafting date, is a distractor; on a page that shows no other
date, the date under the signature is it); `title` is the heading (not the office's header
or signature); `content` is the body text exactly as it appears; the addressee line above
it (各有关单位：) and the signature under it are not part of it.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta

from faker import Faker

POLICY_SYSTEM_PROMPT = (
    "将网页文本中的标题、发布时间和正文提取出来，以json格式输出，字段为title、publishtime、content，"
    "publishtime格式为YYYY-MM-DD，值为文本中提取出来的内容。"
)

ISSUERS = [
    "人民政府办公厅",
    "发展和改革委员会",
    "人力资源和社会保障局",
    "医疗保障局",
    "农业农村局",
    "工业和信息化局",
    "应急管理局",
    "教育局",
    "住房和城乡建设局",
    "生态环境局",
]
KINDS = ["管理办法", "实施意见", "工作方案", "若干措施", "实施细则", "行动计划", "暂行规定"]
TOPICS = [
    "促进就业创业",
    "医疗保障基金使用",
    "乡村振兴",
    "数字经济发展",
    "安全生产",
    "养老服务体系建设",
    "中小企业纾困",
    "人才引进",
    "生活垃圾分类",
    "公共数据开放",
    "老旧小区改造",
    "职业技能提升",
]
WRAPPERS = [
    "关于印发《{p}{t}{k}》的通知",
    "关于{t}的{k}",
    "{p}{t}{k}",
    "关于进一步做好{t}工作的通知",
    "{p}关于{t}的实施意见",
]
BODY = [
    "为深入贯彻落实党中央、国务院关于{t}的决策部署，结合本地实际，制定本{k}。",
    "现将《{p}{t}{k}》印发给你们，请认真贯彻执行。",
    "本{k}自发布之日起施行，有效期{n}年。",
    "到{y}年，全市{t}工作取得明显成效，相关指标达到全省先进水平。",
    "各级各部门要加强组织领导，明确责任分工，确保各项措施落地见效。",
    "对符合条件的单位，按照每人每月{m}元的标准给予补贴。",
    "市财政每年安排专项资金{m}万元，用于支持{t}相关项目建设。",
    "建立健全工作协调机制，定期召开联席会议，及时研究解决工作中遇到的困难和问题。",
    "加强宣传引导，充分利用广播、电视、网络等媒体，营造良好社会氛围。",
    "本{k}由市{i}负责解释。",
    "一、适用范围。本{k}适用于本市行政区域内的{t}相关活动。",
    "二、支持方式。采取先建后补、以奖代补等方式给予支持。",
    "三、申报程序。符合条件的单位于每年{mo}月底前向所在区主管部门提出申请。",
    "第{c}条 市{i}应当会同有关部门建立{t}统计监测制度。",
]
# whom a document is addressed to (主送机关): its own line above the body, not content
ADDRESSEES = [
    "各区人民政府、市政府各部门、各直属机构：",
    "各县（市、区）人民政府，市直各单位：",
    "各有关单位：",
    "各乡镇人民政府、街道办事处，区政府各部门：",
]
# a body's numbered sections and articles (一、总体要求 / 第一条 …), each on a line of its own
SECTION_HEADINGS = ["总体要求", "主要任务", "支持政策", "申报条件", "保障措施", "附则", "工作目标"]
CHINESE_NUMBERS = "一二三四五六七八九十"
OWN_NUMBER = re.compile(r"^(?:[一二三四五六七八九十]、[^。]*。|第.条 )")  # BODY's own numbering
NAV = ["首页", "政务公开", "政策文件", "政策解读", "互动交流", "办事服务", "数据发布", "专题专栏"]


def generate_policy_pages(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    return [_page(rng, fake) for _ in range(n)]


def _fmt(d: date, rng: random.Random) -> str:
    return rng.choice(
        [
            f"{d.year}-{d.month:02d}-{d.day:02d}",
            f"{d.year}年{d.month:02d}月{d.day:02d}日",
            f"{d.year}/{d.month:02d}/{d.day:02d}",
            f"{d.year}-{d.month}-{d.day}",
            f"{d.year}年{d.month}月{d.day}日",
            f"{d.year}.{d.month:02d}.{d.day:02d}",
        ]
    )


def _page(rng: random.Random, fake: Faker) -> dict:
    place = fake.city_name() + "市"
    topic, kind, issuer = rng.choice(TOPICS), rng.choice(KINDS), rng.choice(ISSUERS)
    title = rng.choice(WRAPPERS).format(p=place, t=topic, k=kind)
    published = date(2019, 1, 1) + timedelta(days=rng.randrange(2400))
    drafted = published - timedelta(days=rng.choice([0, 1, 3, 7, 12, 20]))
    sentences = _sentences(rng, topic, kind, place, issuer, published)
    meta = _meta(rng, place, issuer, title, published, drafted)
    head = _navigation(rng, fake, place, title, published)
    # a scanned or converted document: the signature's date under the body is its only date,
    # and by convention the date it was published
    bare = rng.random() < 0.1
    table = not bare and rng.random() < 0.5  # metadata table above the title, else a line under it
    head += [meta if table else "", rng.choice(["字号：大 中 小", "【字体：大 中 小】", ""])]
    under = "" if table or bare else _source_line(rng, place, issuer, published)
    office = _office_header(rng, place, issuer, published) if bare or rng.random() < 0.25 else []
    content = _body(rng, sentences)
    to = rng.choice(ADDRESSEES) if rng.random() < 0.35 else ""
    signed = bare or rng.random() < 0.25  # the office and its date (drafted; bare: published)
    signature = [f"{place}{issuer}", _fmt(published if bare else drafted, rng)] if signed else []
    footer = _footer(rng, fake, place, topic, kind, published)
    parts = [*head, *office, title, under, to, content, *signature, *footer]
    text = rng.choice(["\n", "\n\n", "\n", " "]).join(p for p in parts if p)
    label = {"title": title, "publishtime": published.isoformat(), "content": content}
    return {
        "system": POLICY_SYSTEM_PROMPT,
        "instruction": text,
        "input": "",
        "output": json.dumps(label, ensure_ascii=False),
    }


def _body(rng: random.Random, sentences: list[str]) -> str:
    """The body as sites lay it out (the label keeps every break: it is the text as it is).

    Most bodies run over several lines: paragraphs apart by a line break, a blank line or a
    break and a full-width indent; numbered articles or section headings (一、总体要求) on
    lines of their own; or a PDF's text wrapped at a fixed width, mid-sentence. Some are one
    paragraph. A body therefore rarely ends at the first line break after it starts.
    """
    style = rng.choices(["one", "paragraphs", "sections", "wrapped"], weights=[15, 45, 25, 15])[0]
    breaks = rng.choice(["\n", "\n\n", "\n\u3000\u3000", "\n\n\u3000\u3000"])
    if style == "one":
        return "".join(sentences)
    if style == "wrapped":
        text, width = "".join(sentences), rng.randrange(24, 42)
        return "\n".join(text[i : i + width] for i in range(0, len(text), width))
    if style == "sections":
        sentences = _numbered(rng, [OWN_NUMBER.sub("", s) for s in sentences])
        breaks = breaks.replace("\n\n", "\n")
    kept = 1.0 if style == "sections" else 0.85  # a numbered part always starts a line
    body = sentences[0]
    for s in sentences[1:]:
        body += (breaks if rng.random() < kept else "") + s
    return body


def _numbered(rng: random.Random, sentences: list[str]) -> list[str]:
    """Each sentence under a section heading (一、总体要求) or as an article (第一条, （一）, 1.)."""
    headings = rng.sample(SECTION_HEADINGS, len(sentences))
    if rng.random() < 0.5:
        after = rng.choice(["\n", "。", "\n\u3000\u3000"])
        return [
            f"{CHINESE_NUMBERS[i]}、{h}{after}{s}"
            for i, (h, s) in enumerate(zip(headings, sentences, strict=True))
        ]
    mark, space = rng.choice(["第{}条", "（{}）", "{}."]), rng.choice(["\u3000", " ", ""])
    return [
        mark.format(CHINESE_NUMBERS[i] if mark != "{}." else i + 1) + space + s
        for i, s in enumerate(sentences)
    ]


def _sentences(rng, topic, kind, place, issuer, published) -> list[str]:
    return [
        s.format(
            t=topic,
            k=kind,
            p=place,
            i=issuer,
            n=rng.choice([2, 3, 5]),
            y=published.year + rng.randrange(1, 6),
            m=rng.randrange(5, 500) * 10,
            mo=rng.randrange(1, 13),
            c=rng.choice("四五六七八九十"),
        )
        for s in rng.sample(BODY, rng.randrange(3, 7))
    ]


def _navigation(rng, fake, place, title, published) -> list[str]:
    """Menu, breadcrumb (with or without the title), sometimes a list of other documents."""
    sections = rng.sample(["通知公告", "政策文件", "工作动态", "政策解读", "信息公开"], 2)
    lines = [
        rng.choice([" ".join(rng.sample(NAV, rng.randrange(4, 8))), f"{place}政府信息公开网", ""]),
        rng.choice(
            [
                "当前位置：" + " > ".join(["首页", "政务公开", sections[0], title]),
                "您所在的位置：首页 > " + sections[0],
                "",
            ]
        ),
    ]
    if rng.random() < 0.25:  # a side list of other documents, each with its date
        lines += [sections[1], *(_other_document(rng, fake, published) for _ in range(3))]
    return lines


def _office_header(rng, place, issuer, published) -> list[str]:
    """The issuing office's line above the title, as on a red-header document or a gazette
    (a name, never the title), sometimes with the document number under it."""
    name = rng.choice(
        [f"{place}{issuer}文件", f"{place}人民政府公报  {published.year}年第{rng.randrange(1, 25)}期",
         f"{place}{issuer}"]
    )  # fmt: skip
    number = f"{place[:1]}政办发〔{published.year}〕{rng.randrange(1, 80)}号"
    return [name, number] if rng.random() < 0.5 else [name]


def _footer(rng, fake, place, topic, kind, published) -> list[str]:
    return [
        rng.choice(["", f"附件：{topic}申报表.docx", f"附件：1.{topic}{kind}.pdf 2.政策解读.doc"]),
        rng.choice(["", f"（编辑：{fake.name()}）", f"责任编辑：{fake.name()}"]),
        rng.choice(["", "相关文件：" + _other_document(rng, fake, published), "延伸阅读"]),
        rng.choice(["打印本页 关闭窗口", "【打印】【关闭】", "分享到：", "扫码在手机上查看"]),
        f"主办单位：{place}{rng.choice(ISSUERS)}  联系电话：0{rng.randrange(10, 999)}-{rng.randrange(10**6, 10**8)}",
        f"{rng.choice('京沪粤苏浙鲁川鄂')}ICP备{rng.randrange(10**7, 10**8)}号-{rng.randrange(1, 9)}"
        f"  网站标识码：{rng.randrange(10**9, 10**10)}"
        f"  {rng.choice('京沪粤苏浙')}公网安备 {rng.randrange(10**13, 10**14)}号",
    ]


def _meta(rng, place, issuer, title, published, drafted) -> str:
    date_label = rng.choice(["发布日期", "发布时间"])
    rows = [
        f"索引号：{rng.randrange(10**8, 10**9)}/{published.year}-{rng.randrange(1, 999):05d}",
        f"发布机构：{place}{issuer}",
        f"发文字号：{place[:1]}政办发〔{published.year}〕{rng.randrange(1, 80)}号",
        f"成文日期：{_fmt(drafted, rng)}",
        f"{date_label}：{_fmt(published, rng)}",
    ]
    if rng.random() < 0.3:
        rows.append(f"{rng.choice(['名称', '标题', '文件名称'])}：{title}")
    rng.shuffle(rows)
    return rng.choice(["\n", " | ", "  "]).join(rows)


def _source_line(rng, place, issuer, published) -> str:
    when = _fmt(published, rng) + rng.choice(
        ["", f" {rng.randrange(8, 19)}:{rng.randrange(10, 60)}"]
    )
    source = rng.choice([f"来源：{place}{issuer}", f"信息来源：{issuer}", f"作者：{issuer}"])
    stamp = rng.choice(["发布时间：", "时间：", "日期：", ""]) + when
    extra = rng.choice(["", f"  点击量：{rng.randrange(10, 9999)}", "  【大 中 小】"])
    return rng.choice([f"{source}  {stamp}{extra}", f"{stamp}  {source}{extra}"])


def _other_document(rng, fake, published) -> str:
    when = published - timedelta(days=rng.randrange(1, 400))
    name = rng.choice(WRAPPERS).format(p=fake.city_name() + "市", t=rng.choice(TOPICS),
                                       k=rng.choice(KINDS))  # fmt: skip
    return rng.choice([f"· {name}  {when:%Y-%m-%d}", f"[{when:%m-%d}] {name}", f"{name}（{when}）"])
