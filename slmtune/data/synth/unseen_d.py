"""Held-out forms, set D: written on 2026-12-03 (evening) before any training-side change of
that session, apart from the training generators and from sets A, B and C, never used for
training or for choosing defaults: the blind set for changes made after set C had been looked
at.

Labels follow the training tasks' rules: complaint values are copied exactly from the text
(null when absent), the question is the complaint itself (not a plea to hurry, not the
sender's details); a page's title and content are copied, its publishtime is YYYY-MM-DD.
Each record has a `form` field naming its layout.

Complaint forms
  html        a message-board page as crawled: HTML tags and entities left in, the official
              reply under the message
  json        a mini-program's API payload: nested JSON, camelCase keys, a nickname beside the
              real name
  thread      a forum thread: the original post, then other users' replies with their own
              grievances (the label is the original poster's)
  survey      a satisfaction survey: star ratings, yes/no answers, the complaint in the open
              question, optional contact fields left blank
Policy page forms
  reader      a page turned into Markdown by a reader service: Title / URL Source / Published
              Time lines, links, paragraphs apart by a blank line
  print       a print-friendly page: the URL on top, 2024/3/5-style dates, the print time below
  prevnext    成文日期 and 发布日期 both under the title, previous/next links with their dates
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

from faker import Faker

from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.data.synth.policy_pages import POLICY_SYSTEM_PROMPT
from slmtune.data.synth.unseen import WRITTEN, held_out_record

COMPLAINT_FORMS = ("html", "json", "thread", "survey")
POLICY_FORMS = ("reader", "print", "prevnext")

# -- complaints ----------------------------------------------------------------------------

GRIEVANCES = [
    "电梯一个月坏了四次，上周把我母亲困在里面四十分钟",
    "预付费电表余额还有八十多元就被远程断电了",
    "装宽带时承诺送的路由器到现在也没给，要求按合同补发",
    "小区门口的污水井天天往外冒水，臭味整条街都能闻到",
    "暖气片一直不热，室温只有十二度，供暖费却一分没少交",
    "营业厅办理携号转网被要求先交三个月的违约金",
    "新房交付半年燃气还没通，开发商和燃气公司互相推诿",
    "夜里十二点以后楼下烧烤店的排风机还在响",
    "水表装在别人家院子里，抄表员每个月估着填数字",
    "网上缴费显示成功了，第二天还是被停了机",
]
PLEAS = ["麻烦看一下", "望回复", "请给个说法！", "急！！！", "盼复", "拜托了"]
OTHERS = ["同小区，我家也是这样", "顶一下", "楼主说的情况我们那栋也有，物业一直不管",
          "建议直接打12345", "坐等官方回复"]  # fmt: skip
STARS = ["★☆☆☆☆", "★★☆☆☆", "★★★☆☆"]


def generate_unseen_d_complaints(n: int, seed: int) -> list[dict]:
    """`n` complaints, the forms taken in turn (so every form has ~n/4 records)."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 271828)
    records = []
    for i in range(n):
        form = COMPLAINT_FORMS[i % len(COMPLAINT_FORMS)]
        v = {
            "name": fake.name(),
            "address": rng.choice(
                [
                    f"{fake.city()}{fake.street_name()}{rng.randrange(1, 500)}号"
                    f"{rng.randrange(1, 30)}幢{rng.randrange(101, 2605)}室",
                    f"{fake.province()}{fake.city()}{rng.choice(['东湖', '西园', '南苑', '北辰'])}"
                    f"小区{rng.randrange(1, 30)}号楼",
                ]
            ),
            "email": f"{fake.user_name()}{rng.randrange(1, 999)}"
            f"@{rng.choice(['163.com', 'sina.com', 'yeah.net', 'outlook.com'])}",
            "question": rng.choice(GRIEVANCES),
        }
        keep = {k: rng.random() < p for k, p in (("name", 0.7), ("address", 0.7), ("email", 0.6))}
        label = {k: (v[k] if keep.get(k, True) else None) for k in v}
        text = D_FORMS[form](rng, fake, label)
        for key, value in label.items():
            assert value is None or value in text, (form, key, value)  # copied, by construction
        records.append(held_out_record(COMPLAINT_SYSTEM_PROMPT, text, label, form))
    return records


def _html(rng, fake, v):
    who = v["name"] or rng.choice(["网友", "匿名用户"])
    details = []
    if v["address"]:
        details.append(f"我家住在{v['address']}")
    if v["email"]:
        details.append(f"联系邮箱{v['email']}")
    second = f"<p>{'，'.join(details)}。</p>" if details else ""
    when = fake.date_time_between_dates(*WRITTEN)
    return (
        f'<div class="msg-title">标题：关于{rng.choice(["供电", "供水", "物业", "通信"])}问题的投诉</div>\n'
        f'<div class="msg-info">留言人：{who}&nbsp;&nbsp;留言时间：{when:%Y-%m-%d %H:%M}</div>\n'
        f'<div class="msg-body"><p>{v["question"]}。{rng.choice(PLEAS)}</p>{second}</div>\n'
        f'<div class="reply">回复单位：{fake.company()}<br/>回复内容：您好，您的留言已转交相关'
        f"部门办理，办理结果将另行告知。</div>"
    )


def _json(rng, fake, v):
    payload = {
        "code": 0,
        "data": {
            "submitUser": {
                "nickName": fake.user_name(),
                "realName": v["name"] or "",
                "mail": v["email"] or "",
            },
            "location": {
                "detail": v["address"] or "",
                "lng": round(rng.uniform(100, 125), 6),
                "lat": round(rng.uniform(20, 45), 6),
            },
            "feedback": {
                "type": "投诉",
                "text": f"{v['question']}，{rng.choice(PLEAS)}",
                "images": [],
            },  # fmt: skip
            "ts": rng.randrange(1767225600, 1796256000),
        },
    }
    return json.dumps(payload, ensure_ascii=False, indent=rng.choice([None, 2]))


def _thread(rng, fake, v):
    when = fake.date_time_between_dates(*WRITTEN)
    post = f"{v['question']}，{rng.choice(PLEAS)}"
    if v["name"]:
        post = f"本人{v['name']}，" + post
    if v["email"]:
        post += f"。有回复请发{v['email']}"
    lines = [
        f"【{rng.choice(['民生直通车', '业主论坛', '本地生活'])}】{v['question'][:10]}……",
        f"楼主 {fake.user_name()}  发表于 {when:%Y-%m-%d %H:%M}",
        post,
        "----------",
    ]
    replies = rng.sample(OTHERS, 2) + [rng.choice([g for g in GRIEVANCES if g != v["question"]])]
    rng.shuffle(replies)
    for floor, reply in enumerate(replies, 1):
        lines.append(f"{floor}楼 {fake.user_name()}：{reply}")
    if v["address"]:
        lines.append(f"{len(replies) + 1}楼 楼主：补充一下地址，{v['address']}")
    return "\n".join(lines)


def _survey(rng, fake, v):
    return "\n".join(
        [
            f"{fake.company()}客户满意度回访问卷",
            f"Q1 您对本次服务的总体评价：{rng.choice(STARS)}",
            f"Q2 您是否愿意向亲友推荐我们：{rng.choice(['否', '不确定'])}",
            f"Q3 您遇到的主要问题（可补充说明）：{v['question']}",
            f"Q4 联系方式（选填）：姓名 {v['name'] or ''}  邮箱 {v['email'] or ''}",
            f"Q5 服务地址：{v['address'] or ''}",
            f"提交时间：{fake.date_time_between_dates(*WRITTEN):%Y-%m-%d %H:%M:%S}  "
            f"IP属地：{fake.province()}",
        ]
    )


D_FORMS = {"html": _html, "json": _json, "thread": _thread, "survey": _survey}

# -- policy pages --------------------------------------------------------------------------

SUBJECTS = ["老旧小区改造", "高层次人才引进", "生活垃圾分类", "数字经济发展", "居家养老服务",
            "农村人居环境整治"]  # fmt: skip
KINDS = ["实施细则", "工作方案", "扶持办法", "实施意见"]
SENTENCES = [
    "为深入推进{s}工作，结合本地实际，制定本{k}。",
    "本{k}适用于本行政区域内从事{s}相关活动的单位和个人。",
    "各级财政每年安排专项资金{m}万元，用于支持{s}项目建设。",
    "申请人应当在每年{mo}月底前向所在地主管部门提交申请材料。",
    "主管部门应当自受理之日起{p}个工作日内作出决定。",
    "对弄虚作假骗取补助资金的，依法追回并取消其{p}年内申报资格。",
    "本{k}由市{dept}负责解释。",
    "本{k}自发布之日起施行，有效期{p}年。",
]
DEPTS = ["发展改革委", "人力资源社会保障局", "城市管理局", "民政局", "住房城乡建设局"]


def generate_unseen_d_policy_pages(n: int, seed: int) -> list[dict]:
    """`n` pages, the forms taken in turn."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 141421)
    records = []
    for i in range(n):
        form = POLICY_FORMS[i % len(POLICY_FORMS)]
        s, k, dept = rng.choice(SUBJECTS), rng.choice(KINDS), rng.choice(DEPTS)
        city = fake.city_name() + "市"
        title = rng.choice([f"{city}{s}{k}", f"{city}人民政府办公室关于印发{city}{s}{k}的通知"])
        published = date(2020, 3, 1) + timedelta(days=rng.randrange(2000))
        chosen = sorted(rng.sample(range(len(SENTENCES)), rng.randrange(3, 7)))
        sentences = [
            SENTENCES[c].format(s=s, k=k, dept=dept, m=rng.randrange(100, 5000),
                                mo=rng.randrange(1, 13), p=rng.randrange(2, 31))
            for c in chosen
        ]  # fmt: skip
        page = {"title": title, "sentences": sentences, "date": published, "dept": dept,
                "city": city}  # fmt: skip
        text, content = PAGE_D_FORMS[form](rng, fake, page)
        assert title in text and content in text, form
        label = {"title": title, "publishtime": published.isoformat(), "content": content}
        records.append(held_out_record(POLICY_SYSTEM_PROMPT, text, label, form))
    return records


def _url(rng, d: date) -> str:
    site = rng.choice(["www.gov-sz", "zwgk.hz", "www.cd", "xxgk.wuhan"])
    return f"http://{site}.gov.cn/zwgk/{d:%Y%m}/t{d:%Y%m%d}_{rng.randrange(10**6, 10**7)}.html"


def _other_title(rng, p) -> str:
    """Another document's title on the same site (never the page's own)."""
    others = [s for s in SUBJECTS if s not in p["title"]]
    return f"{p['city']}{rng.choice(others)}{rng.choice(KINDS)}"


def _reader(rng, fake, p):
    d, half = p["date"], max(1, len(p["sentences"]) // 2)
    content = "".join(p["sentences"][:half]) + "\n\n" + "".join(p["sentences"][half:])
    text = "\n\n".join(
        [
            f"Title: {p['title']}",
            f"URL Source: {_url(rng, d)}",
            f"Published Time: {d.isoformat()}T{rng.randrange(8, 18):02d}:00:00+08:00",
            "Markdown Content:",
            "[首页](http://www.gov.cn/) > [政务公开](http://www.gov.cn/zwgk/) > 政策文件",
            f"# {p['title']}",
            content,
            f"[上一篇：{_other_title(rng, p)}]({_url(rng, d - timedelta(days=9))})",
        ]
    )
    return text, content


def _print(rng, fake, p):
    d, content = p["date"], "".join(p["sentences"])
    text = "\n".join(
        [
            f"{p['city']}人民政府门户网站    打印本页",
            _url(rng, d),
            p["title"],
            f"发布日期：{d.year}/{d.month}/{d.day}    信息来源：市{p['dept']}",
            content,
            f"打印时间：2026-12-0{rng.randrange(1, 4)} {rng.randrange(8, 18):02d}:{rng.randrange(60):02d}",
        ]
    )
    return text, content


def _prevnext(rng, fake, p):
    d, content = p["date"], "".join(p["sentences"])
    written = d - timedelta(days=rng.randrange(3, 30))
    text = "\n".join(
        [
            "所在栏目：信息公开 » 规范性文件",
            p["title"],
            f"发文机关：市{p['dept']}   成文日期：{written:%Y年%m月%d日}   发布日期：{d:%Y年%m月%d日}",
            content,
            "相关附件：无",
            f"上一篇：{_other_title(rng, p)}  {d - timedelta(days=rng.randrange(5, 60)):%Y-%m-%d}",
            f"下一篇：{_other_title(rng, p)}  {d + timedelta(days=rng.randrange(5, 60)):%Y-%m-%d}",
        ]
    )
    return text, content


PAGE_D_FORMS = {"reader": _reader, "print": _print, "prevnext": _prevnext}
