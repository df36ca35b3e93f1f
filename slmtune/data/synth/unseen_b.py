"""Held-out forms, set B: written on 2026-12-03, before the training generators were widened
and apart from them and from set A (unseen.py), never used for training or for choosing
defaults. Set A's failures guided the widening of the training generators, so set A's score
is no longer blind; set B is: nothing was tuned on it.

Labels follow the training tasks' rules: complaint values are copied exactly from the text
(null when absent); a page's title and content are copied, its publishtime is YYYY-MM-DD.
Each record has a `form` field naming its layout.

Complaint forms
  chat        a messaging-app chat export: timestamps, two speakers, the details spread over turns
  letter      a formal letter: salutation, body, 此致敬礼, a signed block with the contacts
  webform     a website feedback form as posted: English/Chinese labels, IP and captcha lines
  voicemail   a speech-recognition transcript: no punctuation, fillers, the details spoken
Policy page forms
  redhead     a PDF of a red-header document: 文件 header, 文号, title, addressees, body, 印发
  article     a public-account article: account, author, 发表于 line, body, reading counts
  portal      a portal page with a side list of other policies (titles, dates) before the article
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from faker import Faker

from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.data.synth.policy_pages import POLICY_SYSTEM_PROMPT
from slmtune.data.synth.unseen import WRITTEN, WRITTEN_DAYS, held_out_record

COMPLAINT_FORMS = ("chat", "letter", "webform", "voicemail")
POLICY_FORMS = ("redhead", "article", "portal")

# -- complaints ----------------------------------------------------------------------------

ISSUES = [
    "地下车库的排水沟堵了，一下雨就积水到脚踝，车都开不出去",
    "电梯这个月已经困人三次了，维保单位每次来看一眼就走",
    "充电桩装好两个月了一直不通电，供电所说要等审批",
    "小区门口的早餐摊油烟直接往我家窗户里灌，投诉过城管也没用",
    "办宽带时承诺送的路由器到现在都没给，客服说查不到记录",
    "暖气费交了但是屋里只有十五度，找热力公司说管道没问题",
    "物业擅自把绿地改成了停车位还收费，业主都不知情",
    "用水量突然翻了三倍，家里没有漏水，要求重新核表",
    "营业厅办理携号转网被要求先交违约金，可合同里没写",
    "夜里十二点以后工地还在打桩，噪音根本没法睡觉",
]


def generate_unseen_b_complaints(n: int, seed: int) -> list[dict]:
    """`n` complaints, the forms taken in turn (so every form has ~n/4 records)."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 31337)
    records = []
    for i in range(n):
        form = COMPLAINT_FORMS[i % len(COMPLAINT_FORMS)]
        v = {
            "name": fake.name(),
            "address": _flat(rng, fake),
            "email": f"{fake.user_name()}{rng.choice(['', str(rng.randrange(10, 99))])}"
            f"@{rng.choice(['163.com', 'outlook.com', 'sina.com', fake.domain_name()])}",
            "question": rng.choice(ISSUES),
        }
        keep = {k: rng.random() < p for k, p in (("name", 0.8), ("address", 0.75), ("email", 0.5))}
        label = {k: (v[k] if keep.get(k, True) else None) for k in v}
        text = B_FORMS[form](rng, fake, label)
        for key, value in label.items():
            assert value is None or value in text, (form, key, value)  # copied, by construction
        records.append(held_out_record(COMPLAINT_SYSTEM_PROMPT, text, label, form))
    return records


def _flat(rng: random.Random, fake: Faker) -> str:
    return rng.choice(
        [
            f"{fake.city()}{fake.street_name()}{rng.randrange(1, 500)}号{rng.randrange(1, 30)}楼",
            f"{fake.district()}区{rng.choice(['龙湖', '万科', '保利', '碧桂园'])}"
            f"{rng.choice(['天街', '城市花园', '香槟国际', '翡翠湾'])}{rng.randrange(1, 25)}幢"
            f"{rng.randrange(1, 33)}0{rng.randrange(1, 5)}室",
        ]
    )


def _chat(rng, fake, v):
    manager = fake.name()
    minute = rng.randrange(8 * 60, 20 * 60)
    lines = [f"—— {fake.date_between_dates(*WRITTEN_DAYS):%Y年%m月%d日} ——"]

    def say(who: str, what: str) -> None:
        nonlocal minute
        lines.append(f"{who} {minute // 60:02d}:{minute % 60:02d}\n{what}")
        minute += rng.randrange(0, 25)

    say(f"物业-{manager}", "您好，这里是物业服务中心，请问有什么问题？")
    say("业主", f"{v['question']}，你们到底管不管？")
    if v["name"]:
        say(f"物业-{manager}", "麻烦留一下您的姓名")
        say("业主", v["name"])
    if v["address"]:
        say(f"物业-{manager}", "哪一户呢？")
        say("业主", f"{v['address']}")
    if v["email"]:
        say("业主", f"处理进度发我邮箱 {v['email']}")
    say(f"物业-{manager}", rng.choice(["收到，马上安排人员核实[抱拳]", "好的，今天内给您回复"]))
    return "\n".join(lines)


def _letter(rng, fake, v):
    body = f"尊敬的领导：\n    您好！我写这封信是想反映一个问题：{v['question']}。"
    body += rng.choice(["希望有关部门能够重视。", "恳请尽快协调解决。", ""])
    sign = ["此致", "敬礼！", ""]
    sign.append(f"来信人：{v['name']}" if v["name"] else "一位老住户")
    if v["address"]:
        sign.append(f"家庭住址：{v['address']}")
    sign.append(f"联系电话：{fake.phone_number()}")
    if v["email"]:
        sign.append(f"电子邮件：{v['email']}")
    sign.append(f"{fake.date_between_dates(*WRITTEN_DAYS):%Y年%m月%d日}")
    return body + "\n" + "\n".join(sign)


def _webform(rng, fake, v):
    rows = [
        f"提交时间 Submitted: {fake.date_time_between_dates(*WRITTEN):%Y-%m-%d %H:%M:%S}",
        f"姓名 Name: {v['name'] or '（未填写）'}",
        f"E-mail: {v['email'] or ''}",
        f"联系地址 Address: {v['address'] or '-'}",
        f"留言类型: {rng.choice(['投诉', '建议', '咨询'])}",
        f"留言内容 Message: {v['question']}",
        f"验证码: {rng.randrange(1000, 9999)}",
        f"来源IP: {fake.ipv4()}",
    ]
    return "\n".join(rows)


def _voicemail(rng, fake, v):
    fillers = ["嗯", "那个", "就是", "呃"]
    said = [f"{rng.choice(fillers)} 喂你好"]
    if v["name"]:
        said.append(f"我是{v['name']}")
    if v["address"]:
        said.append(f"住在{v['address']}")
    said.append(f"{rng.choice(fillers)} {v['question']}")
    if v["email"]:
        said.append(f"我邮箱是{v['email']}")
    said.append(rng.choice(["麻烦给我回个电话 谢谢", "就这样 拜拜", "尽快处理一下吧"]))
    return "[语音留言转写] " + " ".join(said)


B_FORMS = {"chat": _chat, "letter": _letter, "webform": _webform, "voicemail": _voicemail}

# -- policy pages --------------------------------------------------------------------------

FIELDS = ["绿色建筑", "数据要素市场", "低空经济", "家政服务提质扩容", "老年助餐", "首店经济"]
GENRES = ["实施方案", "支持政策", "管理规定", "扶持办法"]
CLAUSES = [
    "第一条 为推动{f}高质量发展，根据有关法律法规，结合本市实际，制定本{g}。",
    "第二条 本{g}适用于在本市注册并依法经营的企业和机构。",
    "第三条 对认定的示范项目，按实际投资额的{p}%给予补助，单个项目最高{m}万元。",
    "第四条 申请材料由各区主管部门初审后报市级部门复核。",
    "第五条 获得补助的单位应当按规定用途使用资金，接受审计监督。",
    "第六条 本{g}自{y}年1月1日起施行。",
]
AGENCIES = ["市发展改革委", "市财政局", "市商务委", "市经济和信息化局", "市科技局"]


def generate_unseen_b_policy_pages(n: int, seed: int) -> list[dict]:
    """`n` pages, the forms taken in turn."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 271828)
    records = []
    for i in range(n):
        form = POLICY_FORMS[i % len(POLICY_FORMS)]
        f, g, agency = rng.choice(FIELDS), rng.choice(GENRES), rng.choice(AGENCIES)
        city = fake.city_name() + "市"
        title = rng.choice([f"{city}促进{f}发展{g}", f"关于印发《{city}{f}{g}》的通知"])
        published = date(2022, 1, 1) + timedelta(days=rng.randrange(1400))
        clauses = sorted(rng.sample(range(len(CLAUSES)), rng.randrange(3, 6)))
        content = "".join(
            CLAUSES[c].format(f=f, g=g, p=rng.randrange(10, 40), m=rng.randrange(20, 500),
                              y=published.year + 1)
            for c in clauses
        )  # fmt: skip
        page = {"title": title, "content": content, "date": published, "agency": agency,
                "field": f, "city": city}  # fmt: skip
        text = PAGE_B_FORMS[form](rng, fake, page)
        assert title in text and content in text, form
        label = {"title": title, "publishtime": published.isoformat(), "content": content}
        records.append(held_out_record(POLICY_SYSTEM_PROMPT, text, label, form))
    return records


def _redhead(rng, fake, p):
    d = p["date"]
    return "\n".join(
        [
            f"{p['city']}人民政府办公室文件",
            f"{p['city'][:1]}府办〔{d.year}〕{rng.randrange(1, 90)}号",
            p["title"],
            "各区人民政府，市政府各委、办、局：",
            p["content"],
            f"{p['city']}人民政府办公室",
            f"{d.year}年{d.month}月{d.day}日",
            "（此件公开发布）",
            f"第 1 页 共 {rng.randrange(2, 6)} 页",
        ]
    )


def _article(rng, fake, p):
    d = p["date"]
    return "\n".join(
        [
            p["title"],
            f"{rng.choice(['原创', '转载'])} {p['city']}发布 {p['city']}发布",
            f"{d:%Y-%m-%d} {rng.randrange(7, 23):02d}:{rng.randrange(0, 60):02d} 发表于"
            f"{rng.choice(['北京', '广东', '四川', '浙江'])}",
            f"来源：{p['agency']}",
            p["content"],
            f"编辑：{fake.name()}  审核：{fake.name()}",
            f"阅读 {rng.randrange(300, 90000)}  赞 {rng.randrange(1, 500)}  在看 {rng.randrange(1, 90)}",
        ]
    )


def _portal(rng, fake, p):
    others = [
        f"[{p['date'] - timedelta(days=rng.randrange(3, 200)):%Y-%m-%d}] {x}"
        for x in (
            f"{p['city']}{rng.choice(FIELDS)}{rng.choice(GENRES)}",
            f"关于征集{rng.choice(FIELDS)}项目的公告",
            f"{rng.choice(FIELDS)}政策解读",
        )
    ]
    return "\n".join(
        [
            f"{p['city']}人民政府门户网站  无障碍  长者模式",
            "最新文件",
            *others,
            "正文",
            p["title"],
            f"发布单位：{p['agency']}　发布日期：{p['date']:%Y年%m月%d日}　阅读量：{rng.randrange(9, 999)}",
            p["content"],
            "上一篇：" + rng.choice(others).split("] ")[1],
        ]
    )


PAGE_B_FORMS = {"redhead": _redhead, "article": _article, "portal": _portal}
