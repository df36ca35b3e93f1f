"""Held-out forms, set C: written on 2026-12-03 before this session's training-side changes,
apart from the training generators and from sets A and B, never used for training or for
choosing defaults: the blind set for changes made after set B had been looked at.

Labels follow the training tasks' rules: complaint values are copied exactly from the text
(null when absent), the question is the complaint itself (not a plea to hurry, not the
sender's details); a page's title and content are copied, its publishtime is YYYY-MM-DD.
Each record has a `form` field naming its layout.

Complaint forms
  post        a social-media post: @-mentions of companies, a hashtag, a sign-off, counters
  crm         a CRM export as key=value pairs with English keys, an agent's mailbox among them
  reply       the company's reply on top (the agent's signature), the customer's mail quoted
  table       a hotline work order as a Markdown table, the case handler's name in it
Policy page forms
  gazette     a text layer of a government gazette PDF: running header, 令 line, page numbers
  bilingual   a bilingual site: English menu and metadata labels, Chinese title and body
  brackets    【发布时间】【来源】 metadata, the title truncated with … in the breadcrumb
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from faker import Faker

from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.data.synth.policy_pages import POLICY_SYSTEM_PROMPT
from slmtune.data.synth.unseen import WRITTEN, WRITTEN_DAYS, held_out_record

COMPLAINT_FORMS = ("post", "crm", "reply", "table")
POLICY_FORMS = ("gazette", "bilingual", "brackets")

# -- complaints ----------------------------------------------------------------------------

GRIEVANCES = [
    "智能电表换了以后每个月电费涨了一倍，用电习惯根本没变",
    "小区二次供水的水箱半年没清洗，水里能看到小虫子",
    "装机师傅上门把墙打了个大洞就走了，光纤到现在也没通",
    "燃气报警器半夜一直响，打燃气公司电话两个小时没人接",
    "物业把消防通道租给别人摆摊，出了事谁负责",
    "信用卡年费说好首年免费，结果第一个月就扣了六百",
    "搬家过户水电气要跑三个地方，每个窗口都说材料不全",
    "路口的红绿灯坏了一周，早晚高峰天天堵成一锅粥",
    "手机号被注销后重新放号给了别人，我绑定的银行卡都收不到验证码",
    "停车场收费系统多扣了我三次钱，退款申请一直显示处理中",
]
PLEAS = ["请尽快处理！", "求解决！！", "有没有人管管？", "太过分了", "希望早日答复，谢谢"]
COMPANIES = ["@国家电网", "@中国移动10086", "@本地水务", "@市民热线12345", "@燃气集团客服"]


def generate_unseen_c_complaints(n: int, seed: int) -> list[dict]:
    """`n` complaints, the forms taken in turn (so every form has ~n/4 records)."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 104729)
    records = []
    for i in range(n):
        form = COMPLAINT_FORMS[i % len(COMPLAINT_FORMS)]
        v = {
            "name": fake.name(),
            "address": _dwelling(rng, fake),
            "email": f"{rng.choice([fake.user_name(), fake.pystr(6, 9).lower()])}"
            f"@{rng.choice(['qq.com', '126.com', 'foxmail.com', fake.free_email_domain()])}",
            "question": rng.choice(GRIEVANCES),
        }
        keep = {k: rng.random() < p for k, p in (("name", 0.7), ("address", 0.7), ("email", 0.55))}
        label = {k: (v[k] if keep.get(k, True) else None) for k in v}
        text = C_FORMS[form](rng, fake, label)
        for key, value in label.items():
            assert value is None or value in text, (form, key, value)  # copied, by construction
        records.append(held_out_record(COMPLAINT_SYSTEM_PROMPT, text, label, form))
    return records


def _dwelling(rng: random.Random, fake: Faker) -> str:
    return rng.choice(
        [
            f"{fake.province()}{fake.city()}{fake.street_name()}{rng.randrange(1, 300)}弄"
            f"{rng.randrange(1, 60)}号",
            f"{fake.district()}区{rng.choice(['阳光', '金色', '滨江', '锦绣'])}"
            f"{rng.choice(['家园', '华府', '名苑', '新城'])}{rng.randrange(1, 20)}-"
            f"{rng.randrange(1, 4)}-{rng.randrange(1, 30)}0{rng.randrange(1, 4)}",
        ]
    )


def _post(rng, fake, v):
    mentions = " ".join(rng.sample(COMPANIES, 2))
    body = (
        f"{mentions} #{rng.choice(['投诉', '维权', '曝光'])}# {v['question']}，{rng.choice(PLEAS)}"
    )
    if v["address"]:
        body += f" 坐标{v['address']}"
    if v["email"]:
        body += f"，官方可以私信或者发邮件到{v['email']}"
    if v["name"]:
        body += f"\n——{v['name']}"
    when = fake.date_time_between_dates(*WRITTEN)
    return (
        f"{fake.user_name()}的微博\n{body}\n{when:%m月%d日 %H:%M} 来自 "
        f"{rng.choice(['iPhone客户端', 'HUAWEI Mate 60', '微博网页版'])}\n"
        f"转发 {rng.randrange(0, 500)}  评论 {rng.randrange(0, 900)}  赞 {rng.randrange(0, 3000)}"
    )


def _crm(rng, fake, v):
    pairs = [
        f"ticket_id={rng.randrange(10**11, 10**12)}",
        f"channel={rng.choice(['APP', 'WEB', 'HOTLINE', 'WECHAT'])}",
        f"contact_name={v['name'] or ''}",
        f"addr={v['address'] or 'N/A'}",
        f"mail={v['email'] or ''}",
        f"content={v['question']}",
        f"agent_mail={rng.choice(['cs', 'care', 'agent'])}{rng.randrange(10, 99)}@{fake.domain_name()}",
        f"created_at={fake.date_time_between_dates(*WRITTEN):%Y-%m-%dT%H:%M:%S}",
    ]
    head, tail = pairs[:2], pairs[2:]
    rng.shuffle(tail)
    return rng.choice(["; ", "\n", " & "]).join(head + tail)


def _reply(rng, fake, v):
    agent = fake.name()
    sender = (v["name"] or "匿名") + (f" <{v['email']}>" if v["email"] else "")
    top = [
        f"{v['name'] or '客户'}您好：",
        "    您反映的问题我们已经收到，已转相关部门核实，请耐心等待。",
        f"{agent}  客户服务部",
        f"Email: {rng.choice(['service', 'kf'])}@{fake.domain_name()}  Tel: {fake.phone_number()}",
        "",
        "------------------ 原始邮件 ------------------",
        f"发件人: {sender}",
        f"发送时间: {fake.date_time_between_dates(*WRITTEN):%Y年%m月%d日 %H:%M}",
        "主题: 投诉",
        "",
        f"> {v['question']}。",
    ]
    if v["address"]:
        top.append(f"> 我的住址：{v['address']}")
    top.append(f"> {rng.choice(PLEAS)}")
    return "\n".join(top)


def _table(rng, fake, v):
    rows = [
        ("工单编号", f"{fake.date_between_dates(*WRITTEN_DAYS):%Y%m%d}{rng.randrange(1000, 9999)}"),
        ("来电人", v["name"] or "（匿名）"),
        ("来电号码", fake.phone_number()),
        ("所在地址", v["address"] or "未提供"),
        ("回复邮箱", v["email"] or "无"),
        ("诉求内容", v["question"]),
        ("承办单位", rng.choice(["供电公司", "水务集团", "街道办", "通信管理局"])),
        ("承办人", fake.name()),
    ]
    return "| 字段 | 内容 |\n| --- | --- |\n" + "\n".join(f"| {k} | {x} |" for k, x in rows)


C_FORMS = {"post": _post, "crm": _crm, "reply": _reply, "table": _table}

# -- policy pages --------------------------------------------------------------------------

THEMES = ["夜间经济", "新能源汽车推广应用", "高标准农田建设", "托育服务", "城市更新", "跨境电商"]
TYPES = ["办法", "若干规定", "三年行动方案", "管理暂行办法"]
ARTICLES = [
    "为规范{f}相关工作，保障各方合法权益，依据有关规定，制定本{g}。",
    "本{g}所称{f}，是指在本市行政区域内开展的相关经营和服务活动。",
    "市、区人民政府应当将{f}纳入国民经济和社会发展规划。",
    "对年度考核优秀的单位给予一次性奖励{m}万元。",
    "有关部门应当在{p}个工作日内完成审核并公布结果。",
    "违反本{g}规定的，由主管部门责令限期改正。",
    "本{g}自{y}年{mo}月1日起施行。",
]
OFFICES = ["市人民政府", "市商务局", "市农业农村局", "市卫生健康委", "市住房城乡建设局"]


def generate_unseen_c_policy_pages(n: int, seed: int) -> list[dict]:
    """`n` pages, the forms taken in turn."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 161803)
    records = []
    for i in range(n):
        form = POLICY_FORMS[i % len(POLICY_FORMS)]
        f, g, office = rng.choice(THEMES), rng.choice(TYPES), rng.choice(OFFICES)
        city = fake.city_name() + "市"
        title = rng.choice([f"{city}{f}{g}", f"{city}{office}关于加快{f}的{g}"])
        published = date(2021, 6, 1) + timedelta(days=rng.randrange(1600))
        chosen = sorted(rng.sample(range(len(ARTICLES)), rng.randrange(3, 6)))
        content = "".join(
            ARTICLES[c].format(f=f, g=g, m=rng.randrange(5, 200), p=rng.randrange(5, 30),
                               y=published.year, mo=rng.randrange(1, 13))
            for c in chosen
        )  # fmt: skip
        page = {"title": title, "content": content, "date": published, "office": office,
                "city": city}  # fmt: skip
        text = PAGE_C_FORMS[form](rng, fake, page)
        assert title in text and content in text, form
        label = {"title": title, "publishtime": published.isoformat(), "content": content}
        records.append(held_out_record(POLICY_SYSTEM_PROMPT, text, label, form))
    return records


def _gazette(rng, fake, p):
    d = p["date"]
    return "\n".join(
        [
            f"{p['city']}人民政府公报  {d.year}年第{rng.randrange(1, 24)}期",
            p["title"],
            f"（{d.year}年{d.month}月{d.day}日发布  {p['city'][:1]}政规〔{d.year}〕{rng.randrange(1, 30)}号）",
            p["content"],
            f"— {rng.randrange(2, 60)} —",
        ]
    )


def _bilingual(rng, fake, p):
    d = p["date"]
    return "\n".join(
        [
            "Home | 首页 | Policies | 政策 | English | 中文",
            f"Location: Home > Policies > {rng.choice(['Regulations', 'Notices'])}",
            p["title"],
            f"Release Date: {d:%Y-%m-%d}    Source: {p['office']}    Views: {rng.randrange(10, 5000)}",
            p["content"],
            "Share: WeChat | Weibo | QQ",
            f"Copyright © {d.year + 1} {p['city']} All Rights Reserved",
        ]
    )


def _brackets(rng, fake, p):
    d = p["date"]
    return "\n".join(
        [
            f"首页 > 政策法规 > {p['title'][:8]}…",
            p["title"],
            f"【发布时间】{d.year}年{d.month:02d}月{d.day:02d}日  【来源】{p['office']}  "
            "【字号】大 中 小",
            p["content"],
            "【打印】【关闭】",
            "扫一扫在手机打开当前页",
        ]
    )


PAGE_C_FORMS = {"gazette": _gazette, "bilingual": _bilingual, "brackets": _brackets}
