"""Held-out forms: the two demo tasks as texts arrive in the wild, written independently of the
training generators (complaints.py, policy_pages.py) and never used for training or for
choosing defaults. They measure what a company sees on its own texts: layouts, label words,
noise and distractors the model never saw.

Each record has a `form` field naming its layout, so scores can be reported per form.
Labels follow the training tasks' rules: complaint values are copied exactly from the text
(null when absent); a page's title and content are copied, its publishtime is YYYY-MM-DD.

Complaint forms
  email        a mail with headers (the sender's address is the email), a signature block
  transcript   a call-centre transcript, 坐席/客户 turns; the agent's own name is a distractor
  ticket       a work-order export: full-width labels and separators, extra fields
  forwarded    a complaint forwarded by a grid worker/app, with the forwarder's details
  sms          a short message: no name and no email, often no address either
  ocr          a scanned paper form: stray spaces, broken lines, full-width digits and letters
Policy page forms
  news         a news-centre page: 来源 / 发布时间 / 浏览次数 line, related links after the body
  gov_table    a public-information catalogue table (索引号 … 发布日期) with the title in it
  mobile       a phone layout: short header, time and source on one line, share buttons
  flat         the same page flattened by a crawler onto one line, with menu noise
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

from faker import Faker

from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.data.synth.policy_pages import POLICY_SYSTEM_PROMPT

# the texts' own dates: a fixed range, not Faker's "this year so far" (it moves with the
# clock, so the same seed gave other texts from one second to the next)
WRITTEN = (datetime(2026, 1, 1), datetime(2026, 12, 3))
WRITTEN_DAYS = (date(2026, 1, 1), date(2026, 12, 3))
COMPLAINT_FORMS = ("email", "transcript", "ticket", "forwarded", "sms", "ocr")
POLICY_FORMS = ("news", "gov_table", "mobile", "flat")

# -- complaints ----------------------------------------------------------------------------

PROBLEMS = [
    "小区东门的路灯坏了快一个月了，晚上回家黑漆漆的老人摔倒过两次",
    "上个月电费比平时多出两百多块，家里一直没人住，怀疑电表走字有问题",
    "光纤入户后网速只有合同写的十分之一，打了三次客服电话都说会处理却没人上门",
    "自来水从昨天开始发黄有异味，烧开以后还有沉淀，孩子不敢喝",
    "楼上装修每天早上七点就开始电钻，物业说管不了",
    "燃气公司上门安检时说我家软管要换，强行收了三百元，发票也不给",
    "手机套餐被莫名其妙开通了视频会员，每月扣二十五元，我从来没有办理过",
    "停电通知只贴在一楼公告栏，楼里冰箱里的东西全坏了，要求赔偿",
    "快递柜超时收费太离谱，放了半天就收了三块钱",
    "宽带到期后没有通知就自动续费了一年，要求退款",
    "变压器整夜嗡嗡响，离我家窗户不到十米，已经严重影响睡眠",
    "营业厅工作人员态度恶劣，办理销户被推来推去跑了四趟",
]
MAIL_SUBJECTS = ["投诉", "关于{p}的反映", "紧急！请尽快处理", "Re: 工单进度", "问题反馈"]
AGENTS = ["工号3021 李婷", "客服代表 王芳", "坐席 陈晨（工号0815）", "话务员 赵磊"]
WORKERS = ["网格员 孙丽", "社区工作人员 周强", "12345热线转办 刘洋", "业主群管理员 吴敏"]
FULL = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@.-_",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ＠．－＿",
)


def generate_unseen_complaints(n: int, seed: int) -> list[dict]:
    """`n` complaints, the forms taken in turn (so every form has ~n/6 records)."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 7919)
    records = []
    for i in range(n):
        form = COMPLAINT_FORMS[i % len(COMPLAINT_FORMS)]
        values = {
            "name": fake.name(),
            "address": _home(rng, fake),
            "email": _mailbox(rng, fake),
            "question": rng.choice(PROBLEMS),
        }
        text, label = FORMS[form](rng, fake, values)
        records.append(_complaint(text, label, form))
    return records


def _complaint(text: str, label: dict, form: str) -> dict:
    label = {k: label.get(k) for k in ("name", "address", "email", "question")}
    for key, value in label.items():
        assert value is None or value in text, (form, key, value)  # copied, by construction
    return held_out_record(COMPLAINT_SYSTEM_PROMPT, text, label, form)


def held_out_record(system: str, text: str, label: dict, form: str) -> dict:
    """An alpaca record of a held-out set, with the `form` its text was written in (every set
    builds its records here)."""
    output = json.dumps(label, ensure_ascii=False)
    return {"system": system, "instruction": text, "input": "", "output": output, "form": form}


def _home(rng: random.Random, fake: Faker) -> str:
    estate = rng.choice(["阳光花园", "翠湖小区", "锦绣家园", "和平里", "幸福新村", "金桂苑"])
    return rng.choice(
        [
            f"{fake.city()}{estate}{rng.randrange(1, 40)}号楼{rng.randrange(1, 30)}0{rng.randrange(1, 6)}",
            f"{fake.district()}区{fake.street_name()}{rng.randrange(1, 300)}弄{rng.randrange(1, 99)}号",
            f"{estate}{rng.randrange(1, 20)}栋{rng.randrange(1, 4)}单元",
        ]
    )


def _mailbox(rng: random.Random, fake: Faker) -> str:
    user = fake.user_name()
    return rng.choice(
        [f"{user}@{fake.free_email_domain()}", f"{user}.{rng.randrange(70, 99)}@company.cn",
         f"{rng.randrange(10**6, 10**9)}@139.com"]
    )  # fmt: skip


def _email_form(rng, fake, v):
    headers = [
        f"发件人：{v['name']} <{v['email']}>",
        f"收件人：{rng.choice(['service', 'kefu', 'tousu'])}@{fake.domain_name()}",
        f"主题：{rng.choice(MAIL_SUBJECTS).format(p=v['question'][:6])}",
        f"时间：{fake.date_time_between_dates(*WRITTEN):%Y年%m月%d日 %H:%M}",
    ]
    body = f"您好：\n    {v['question']}。\n"
    address = rng.random() < 0.6
    if address:
        body += f"    我的住址：{v['address']}，方便的话请派人来看看。\n"
    sign = f"\n--\n{v['name']}\n{fake.phone_number()}\n此邮件由手机发送"
    label = dict(v, address=v["address"] if address else None)
    return "\n".join(headers) + "\n\n" + body + sign, label


def _transcript(rng, fake, v):
    agent = rng.choice(AGENTS)
    turns = [
        f"坐席（{agent}）：您好，很高兴为您服务，请问有什么可以帮您？",
        f"客户：{v['question']}。",
        "坐席：非常抱歉给您带来不便，请问您怎么称呼？",
        f"客户：我叫{v['name']}。",
        "坐席：好的，请问您的详细地址是？",
        f"客户：{v['address']}。",
    ]
    email = rng.random() < 0.4
    if email:
        turns += ["坐席：处理结果需要发到您邮箱吗？", f"客户：可以，发到{v['email']}。"]
    turns.append("坐席：好的，已为您登记，请保持电话畅通。")
    return "\n".join(turns), dict(v, email=v["email"] if email else None)


def _ticket(rng, fake, v):
    fields = [
        ("工单编号", f"WO{rng.randrange(10**11, 10**12)}"),
        ("受理渠道", rng.choice(["微信公众号", "网上营业厅", "电话"])),
        ("联系人", v["name"]),
        ("来电号码", fake.phone_number()),
        ("诉求地点", v["address"]),
        ("电子信箱", v["email"]),
        ("诉求内容", v["question"]),
        (
            "受理时间",
            f"{fake.date_between_dates(*WRITTEN_DAYS)} {rng.randrange(8, 20)}:{rng.randrange(10, 60)}",
        ),
    ]
    drop = rng.choice(["电子信箱", "联系人", None])
    fields = [(k, x) for k, x in fields if k != drop]
    sep = rng.choice(["：", "：　", "｜", "\t"])
    text = "\n".join(f"{k}{sep}{x}" for k, x in fields)
    label = dict(v, email=None if drop == "电子信箱" else v["email"])
    label["name"] = None if drop == "联系人" else v["name"]
    return text, label


def _forwarded(rng, fake, v):
    worker = rng.choice(WORKERS)
    text = (
        f"【转办】{worker}转来居民反映：\n"
        f"“{v['question']}，我是{v['address']}的住户{v['name']}，"
        f"麻烦尽快处理。”\n"
        f"转办人联系邮箱：{fake.user_name()}@gov-grid.cn（非投诉人）\n"
        f"办理时限：{rng.randrange(1, 8)}个工作日"
    )
    return text, dict(v, email=None)


def _sms(rng, fake, v):
    where = rng.random() < 0.5
    text = (
        v["question"]
        + (f"，在{v['address']}" if where else "")
        + rng.choice(["", "！！", "。回复TD退订"])
    )
    return text, {"question": v["question"], "address": v["address"] if where else None}


def _ocr(rng, fake, v):
    name = v["name"]
    email = v["email"].translate(FULL) if rng.random() < 0.5 else v["email"]
    address = v["address"].translate(FULL)  # the form's digits were printed full-width
    text = (
        f"居 民 诉 求 登 记 表\n姓名 {name}    性别 {rng.choice('男女')}\n"
        f"住址 {address}\n电子邮箱 {email}\n"
        f"反映问题（请详细填写）\n{v['question']}\n"
        f"登记人签字：＿＿＿＿    日期：{fake.date_between_dates(*WRITTEN_DAYS):%Y．%m．%d}"
    )
    return text, dict(v, email=email, address=address)


FORMS = {
    "email": _email_form,
    "transcript": _transcript,
    "ticket": _ticket,
    "forwarded": _forwarded,
    "sms": _sms,
    "ocr": _ocr,
}

# -- policy pages --------------------------------------------------------------------------

SUBJECTS = [
    "城市更新", "新能源汽车推广应用", "跨境电商发展", "托育服务", "冷链物流", "高标准农田建设",
    "河湖长制", "无障碍环境建设", "社区嵌入式服务设施", "夜间经济",
]  # fmt: skip
DOC_KINDS = ["若干政策措施", "三年行动方案", "管理暂行办法", "工作指引", "专项资金管理办法"]
SENTENCES = [
    "为加快推进{s}，经{o}同意，现就有关事项通知如下。",
    "一、总体要求。坚持问题导向和目标导向，到{y}年基本形成{s}的长效机制。",
    "二、重点任务。对新建项目给予一次性奖励，最高不超过{m}万元。",
    "三、保障措施。各责任单位要于每季度末报送工作进展情况。",
    "申报单位应当对材料的真实性负责，如有弄虚作假，取消资格并收回资金。",
    "本办法所称{s}项目，是指在本市行政区域内实施并完成验收的项目。",
    "请各地结合实际抓好贯彻落实，执行中遇到的问题请及时反馈。",
]
OFFICES = ["市商务局", "市卫生健康委", "市水务局", "市住房城乡建设委", "市交通运输局", "市民政局"]


def generate_unseen_policy_pages(n: int, seed: int) -> list[dict]:
    """`n` pages, the forms taken in turn."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 104729)
    records = []
    for i in range(n):
        form = POLICY_FORMS[i % len(POLICY_FORMS)]
        page = _policy_values(rng, fake)
        text = PAGE_FORMS[form](rng, fake, page)
        label = {"title": page["title"], "publishtime": page["date"].isoformat(),
                 "content": page["content"]}  # fmt: skip
        assert page["title"] in text and page["content"] in text, form
        records.append(held_out_record(POLICY_SYSTEM_PROMPT, text, label, form))
    return records


def _policy_values(rng, fake) -> dict:
    subject, office = rng.choice(SUBJECTS), rng.choice(OFFICES)
    kind = rng.choice(DOC_KINDS)
    title = rng.choice(
        [f"{office}关于印发{subject}{kind}的通知", f"{fake.city_name()}市{subject}{kind}",
         f"关于做好{rng.randrange(2023, 2027)}年度{subject}工作的通知"]
    )  # fmt: skip
    published = date(2021, 1, 1) + timedelta(days=rng.randrange(1500))
    body = rng.sample(SENTENCES, rng.randrange(3, 6))
    content = "".join(
        s.format(s=subject, o=office, y=published.year + 2, m=rng.randrange(5, 300)) for s in body
    )
    return {"title": title, "content": content, "date": published, "office": office,
            "subject": subject}  # fmt: skip


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _news(rng, fake, p):
    return "\n".join(
        [
            "网站首页 | 新闻中心 | 通知公告 | 在线办事 | English",
            f"您现在的位置：首页 >> 新闻中心 >> {p['subject']}",
            p["title"],
            f"来源：{p['office']}  发布时间：{_cn_date(p['date'])} {rng.randrange(8, 18)}:"
            f"{rng.randrange(10, 60)}  浏览次数：{rng.randrange(50, 9000)}",
            p["content"],
            f"（责任编辑：{fake.name()}）",
            "相关阅读：",
            f"· {p['subject']}政策问答（{p['date'].year - 1}年版）",
            f"· 关于开展{p['subject']}试点工作的通知",
        ]
    )


def _gov_table(rng, fake, p):
    drafted = p["date"] - timedelta(days=rng.randrange(2, 20))
    rows = [
        f"索  引  号：{rng.randrange(10**10, 10**11)}/{p['date'].year}-{rng.randrange(10, 999)}",
        f"主题分类：{p['subject']}",
        f"发文机关：{p['office']}",
        f"成文日期：{drafted:%Y-%m-%d}",
        f"标　　题：{p['title']}",
        f"发文字号：{p['office'][1:3]}发〔{p['date'].year}〕{rng.randrange(1, 60)}号",
        f"发布日期：{p['date']:%Y-%m-%d}",
    ]
    return "\n".join(
        ["政府信息公开目录", *rows, p["title"], p["content"], "扫一扫在手机打开当前页"]
    )


def _mobile(rng, fake, p):
    return "\n".join(
        [
            "≡  政务服务网",
            p["title"],
            f"{p['date']:%Y-%m-%d} {rng.randrange(8, 18)}:{rng.randrange(10, 60)}  {p['office']}",
            p["content"],
            "分享到：微信 朋友圈 微博",
            "返回顶部",
        ]
    )


def _flat(rng, fake, p):
    menu = "首页 机构概况 政务公开 政策法规 办事服务 互动交流"
    return (
        f"{menu} 当前位置：首页>政策法规 {p['title']} 发布时间：{p['date']:%Y/%m/%d} "
        f"来源：{p['office']} 【字号 大 中 小】 {p['content']} 【打印此页】【关闭窗口】 "
        f"版权所有：{p['office']} 备案号：{rng.choice('京沪粤')}ICP备{rng.randrange(10**7, 10**8)}号"
    )


PAGE_FORMS = {"news": _news, "gov_table": _gov_table, "mobile": _mobile, "flat": _flat}
