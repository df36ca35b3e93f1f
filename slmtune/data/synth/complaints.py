"""Synthetic Chinese complaints labelled {name, address, email, question}, noisy on purpose.

Every label value is copied verbatim from the text (extraction is copying), or null when
the text does not contain that field. Surface forms vary: field order, label words (with
typos; the name's is often the sender's role, 反映人 or 报修人姓名, and a handler's is made
the same way, 跟进人), separators (full- and half-width), greetings, filler, distractor
numbers (phones, work orders, dates, amounts) that must not be extracted, and trailing
noise. Six layouts:
labelled fields (an absent one sometimes shown with a placeholder: 无, N/A, -; sometimes as
a spreadsheet export, a header row above the values row), a narrative, a message with
headers and a signature, a dialogue with an agent (plain or time-stamped turns), a
complaint relayed by someone else, and a transcribed call without punctuation.
Other people appear too (staff, case handlers, the relay, service and staff mailboxes
labelled by whose they are (跟进人邮箱), given in a staff member's sentence, one the sender
wrote to, or the organisation's own in its answer under the text; a neighbour's complaint
or an earlier case): their names, emails and complaints are never
the answer; nor are the sender's handle (昵称), a platform's region (IP属地) or a title
naming the complaint's topic. The question is the complaint itself (what happened, and
a specific demand, 要求…, when there is one): a plea after it (urging, waiting for an answer,
indignation, a rhetorical question or thanks: "，希望尽快处理", "，坐等回复", "，你们到底管不管？",
mostly composed from parts so they vary; after seven complaints in ten), and the sender's
name or address said in the same sentence, are not part of it.
The complaint itself is composed from fragments, one clause to several, so thousands are
distinct.
"""

from __future__ import annotations

import json
import random

from faker import Faker

from slmtune.data.synth import _fragments as F

COMPLAINT_SYSTEM_PROMPT = (
    "将文本中的name、address、email、question提取出来，以json格式输出，字段为name、address、email、"
    "question，值为文本中提取出来的内容。"
)
KEYS = ("name", "address", "email", "question")
DROP_RATE = {"name": 0.2, "address": 0.2, "email": 0.25, "question": 0.06}
LABELS = {
    "name": F.NAME_LABELS,
    "address": F.ADDRESS_LABELS,
    "email": F.EMAIL_LABELS,
    "question": F.QUESTION_LABELS,
}


def generate_complaints(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    return [_record(rng, fake) for _ in range(n)]


def _record(rng: random.Random, fake: Faker) -> dict:
    values = {
        "name": fake.name(),
        "address": _address(rng, fake),
        "email": _email(rng, fake),
        "question": _complaint(rng),
    }
    label = {k: (None if rng.random() < DROP_RATE[k] else values[k]) for k in KEYS}
    if all(v is None for v in label.values()):
        label["question"] = values["question"]
    layout = rng.choices(LAYOUTS, weights=[30, 26, 12, 12, 10, 10])[0]
    text = layout(rng, fake, label)
    text = rng.choice(F.GREETINGS) + text
    trailer = rng.choice(F.TRAILERS)
    if trailer:
        text += rng.choice(["\n", " ", "。"]) + trailer
    if rng.random() < 0.12:
        text += rng.choice(["\n", "\n\n", "\n----\n"]) + _answered(rng, fake)
    return {
        "system": COMPLAINT_SYSTEM_PROMPT,
        "instruction": text,
        "input": "",
        "output": json.dumps(label, ensure_ascii=False),
    }


def _labelled(rng: random.Random, fake: Faker, label: dict) -> str:
    said = {**label, "question": label["question"] and _urged(rng, label["question"])}
    blank = rng.random() < 0.4  # an absent field shown empty, like a form's export
    said = {k: (rng.choice(F.EMPTY) if v is None and blank else v) for k, v in said.items()}
    if rng.random() < 0.2:
        return _table(rng, fake, {_label(rng, k): v for k, v in said.items()})
    parts = [
        f"{_label(rng, k)}{rng.choice(F.SEPARATORS)}{v}" for k, v in said.items() if v is not None
    ]
    rng.shuffle(parts)
    parts = _with_noise(rng, fake, parts)
    glue = rng.choice(F.FIELD_GLUE)
    return glue.join(parts)


def _label(rng: random.Random, key: str) -> str:
    """A field's label word; the name's as often the sender's role and an ending (反映人,
    报修人姓名) as a known word, the email's a third of the time the sender's role and a mail
    word (反映人邮箱, 求助者Email), so the model reads whose role a label names (a handler's is
    made the same way) rather than remembering a list."""
    if key == "name" and rng.random() < 0.5:
        return rng.choice(F.SENDER_ROLES) + rng.choice(F.SENDER_ENDS)
    if key == "email" and rng.random() < 0.35:
        return (
            rng.choice(F.SENDER_ROLES) + rng.choice(["人", "人", "者"]) + rng.choice(F.MAIL_WORDS)
        )
    return rng.choice(LABELS[key])


def _staff_mail_label(rng: random.Random) -> str:
    """A staff mailbox's label: a known one (客服邮箱) or as often a staff role or what a
    handler does and a mail word (值班员联系邮箱, 跟进人邮箱)."""
    if rng.random() < 0.5:
        return rng.choice(F.OTHER_MAIL_LABELS)
    who = rng.choice([*F.STAFF_ROLES, *(a + rng.choice(["人", "员"]) for a in F.STAFF_ACTS)])
    return who + rng.choice(F.MAIL_WORDS)


def _handler_label(rng: random.Random) -> str:
    """A case handler's label: a known one (承办人) or as often what they do and an ending."""
    if rng.random() < 0.5:
        return rng.choice(F.STAFF_ACTS) + rng.choice(F.STAFF_ENDS)
    return rng.choice(F.HANDLER_LABELS)


def _table(rng: random.Random, fake: Faker, cells: dict) -> str:
    """A ticket exported from a spreadsheet or a CRM: a header row of column names above one
    row of values (CSV, tab-separated or a Markdown table), with the system's own columns
    (ticket number, time, handler, status, channel) beside the sender's; an absent field's
    cell empty."""
    system = {
        rng.choice(["工单号", "受理编号", "序号"]): str(rng.randrange(10**5, 10**10)),
        rng.choice(["受理时间", "创建时间", "日期"]): f"{rng.randrange(2021, 2026)}-"
        f"{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {rng.randrange(8, 21)}:{rng.randrange(60):02d}",
        _handler_label(rng): fake.name(),
        _staff_mail_label(rng): _other_mail(rng, fake),
        rng.choice(["状态", "处理状态"]): rng.choice(["已受理", "处理中", "已办结", "待派单"]),
        rng.choice(["来源", "渠道"]): rng.choice(["热线", "APP", "网站", "微信", "信件"]),
    }
    extra = rng.sample(list(system.items()), rng.randrange(1, 4))
    columns = [(k, "" if v is None else v) for k, v in cells.items()] + extra
    rng.shuffle(columns)
    head, row = [k for k, _ in columns], [v for _, v in columns]
    style = rng.randrange(3)
    if style == 0:
        quote_all = rng.random() < 0.3
        row = [f'"{v}"' if quote_all or "," in v or " " in v else v for v in row]
        return ",".join(head) + "\n" + ",".join(row)
    if style == 1:
        return "\t".join(head) + "\n" + "\t".join(row)
    lines = [head, ["---"] * len(head), row]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _narrative(rng: random.Random, fake: Faker, label: dict) -> str:
    inline = label["address"] and label["question"] and rng.random() < 0.35
    intro = _introduced(rng, label["name"], None if inline else label["address"])
    parts = ["，".join(intro)] if intro else []
    if label["question"]:
        where = rng.choice(F.INLINE_ADDRESS).format(v=label["address"]) if inline else ""
        complaint = _urged(rng, label["question"] + where)
        if parts and rng.random() < 0.3:  # the sender says who they are after the complaint
            parts = [complaint + "，" + parts[0]]
        elif parts and rng.random() < 0.5:  # or before it, in the same sentence (本人王芳，…)
            parts = [parts[0] + "，" + complaint]
        else:
            parts.append(complaint)
    if label["email"]:
        parts.insert(
            rng.randrange(len(parts) + 1), rng.choice(F.NARRATIVE_EMAIL).format(v=label["email"])
        )
    parts = _with_noise(rng, fake, parts)
    return rng.choice(["。", "。\n", "！", "。 "]).join(parts) + rng.choice(
        ["。", "！", "", "。。"]
    )


def _message(rng: random.Random, fake: Faker, label: dict) -> str:
    """A mail or app message: headers, a body, a signature; the recipient is a service box."""
    sender = f"{label['name'] or fake.user_name()}" + (
        f" <{label['email']}>" if label["email"] else ""
    )
    headers = [
        f"{rng.choice(['发件人', 'From', '寄件人'])}：{sender}",
        f"{rng.choice(['收件人', 'To'])}：{_other_mail(rng, fake)}",
        f"{rng.choice(['主题', 'Subject', '标题'])}：{_subject(rng)}",
    ]
    rng.shuffle(headers)
    body = [rng.choice(["您好：", "你好，", "相关负责人："])]
    if label["question"]:
        body.append(_urged(rng, label["question"]) + rng.choice(["。", "！", ""]))
    if label["address"]:
        body.append(rng.choice(F.NARRATIVE_ADDRESS).format(v=label["address"]) + "。")
    sign = [rng.choice(["--", "——", "祝好", "谢谢"])]
    if label["name"]:
        sign.append(label["name"])
    sign.append(_distractor(rng))
    return "\n".join(headers) + "\n\n" + "\n".join(body) + "\n" + "\n".join(sign)


def _subject(rng: random.Random) -> str:
    """A subject line: a word for any complaint, or one naming its topic."""
    if rng.random() < 0.5:
        return rng.choice(F.SUBJECTS)
    return rng.choice(F.TITLES).format(t=rng.choice(F.TOPICS))


def _dialogue(rng: random.Random, fake: Faker, label: dict) -> str:
    """A call or chat: an agent (with a name of their own) asks, the customer answers; turns
    as "who：what" or, like a chat export, a "who hh:mm" line above what was said."""
    agent = f"{rng.choice(F.STAFF_ROLES)}{fake.name()}"
    me = rng.choice(["客户", "用户", "来电人", "我", "业主", "居民"])
    turns = [(agent, "您好，请讲。")]
    if label["question"]:
        turns.append((me, f"{_urged(rng, label['question'])}。"))
    asks = {"name": "怎么称呼您？", "address": "地址是哪里？", "email": "邮箱方便留一个吗？"}
    for key in rng.sample(list(asks), 3):
        if label[key]:
            turns += [(agent, asks[key]), (me, label[key])]
    turns.append((agent, f"{rng.choice(['好的，已登记', '收到，会尽快处理'])}。"))
    if rng.random() < 0.6:
        return "\n".join(f"{who}：{what}" for who, what in turns)
    minute = rng.randrange(8 * 60, 21 * 60)
    stamped = []
    for who, what in turns:
        stamped.append(f"{who} {minute // 60:02d}:{minute % 60:02d}\n{what}")
        minute += rng.randrange(0, 20)
    return "\n".join(stamped)


def _relayed(rng: random.Random, fake: Faker, label: dict) -> str:
    """Someone else passes the complaint on and adds their own name and mailbox."""
    relay = f"{rng.choice(F.RELAYS)}{fake.name()}"
    head = f"{relay}{rng.choice(F.RELAY_VERBS)}："
    told = _introduced(rng, label["name"], label["address"])
    if label["question"]:
        told.insert(rng.randrange(len(told) + 1), _urged(rng, label["question"]))
    if label["email"]:
        told.append(rng.choice(F.NARRATIVE_EMAIL).format(v=label["email"]))
    tail = f"{rng.choice(['记录人邮箱', '联系邮箱（转办人）', '经办'])}：{_other_mail(rng, fake)}"
    return head + "“" + "，".join(told) + "。”\n" + tail


def _spoken(rng: random.Random, fake: Faker, label: dict) -> str:
    """A transcribed call or voice message: clauses run on with spaces, fillers between."""
    forms = {"name": F.NARRATIVE_NAME, "address": F.NARRATIVE_ADDRESS, "email": F.NARRATIVE_EMAIL}
    said = [rng.choice(forms[k]).format(v=label[k]) for k in forms if label[k]]
    rng.shuffle(said)
    if label["question"]:
        said.insert(rng.randrange(len(said) + 1), f"{rng.choice(F.SPOKEN)} {label['question']}")
    said = [f"{rng.choice(F.SPOKEN)} 喂 你好", *said]
    said.append(
        _plea(rng) if rng.random() < 0.7 else rng.choice(["就这样", "就这样 拜拜", "嗯 好"])
    )
    if rng.random() < 0.3:
        said.insert(rng.randrange(1, len(said)), _distractor(rng))
    return rng.choice(["", "[语音转写] ", "来电录音：", "（通话转写）"]) + " ".join(said)


LAYOUTS = [_labelled, _narrative, _message, _dialogue, _relayed, _spoken]


def _with_noise(rng: random.Random, fake: Faker, parts: list[str]) -> list[str]:
    """Insert distractors (numbers, other people, service mailboxes) and filler words
    *between* fields, never inside a value."""
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        parts.insert(rng.randrange(len(parts) + 1), _distractor(rng))
    if rng.random() < 0.3:
        parts.insert(rng.randrange(len(parts) + 1), _third_party(rng, fake))
    if rng.random() < 0.2:
        parts.insert(rng.randrange(len(parts) + 1), _staff_mailbox(rng, fake))
    if rng.random() < 0.3:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(F.FILLERS))
    return [p for p in parts if p]


def _third_party(rng: random.Random, fake: Faker) -> str:
    """Someone or something else the text names: staff, a case handler, a service mailbox,
    the sender's handle (not a name), someone else's complaint or an earlier case."""
    kind = rng.random()
    if kind < 0.25:
        return f"{rng.choice(F.STAFF_ROLES)}{fake.name()}{rng.choice(F.STAFF_SAYS)}"
    if kind < 0.45:
        return f"{_handler_label(rng)}{rng.choice(F.SEPARATORS)}{fake.name()}"
    if kind < 0.65:
        return _staff_mailbox(rng, fake)
    if kind < 0.8:
        return f"{rng.choice(F.HANDLE_LABELS)}{rng.choice(F.SEPARATORS)}{fake.user_name()}"
    return rng.choice(F.OTHER_CASES).format(c=_complaint(rng), n=fake.name())


def _answered(rng: random.Random, fake: Faker) -> str:
    """The organisation answering under the text in its own voice (官方回复：您好，请把相关截图
    发到kefu@…), sometimes signed by a staff member: its mailbox is never the sender's."""
    who = rng.choice(F.REPLY_WHO)
    if rng.random() < 0.3:
        who = f"{rng.choice(F.STAFF_ROLES)}{fake.name()}{rng.choice(['回复', '答复'])}"
    ask = rng.choice(F.REPLY_ASK).format(x=rng.choice(F.REPLY_WHAT), m=_other_mail(rng, fake))
    colon = "" if who.endswith("】") else rng.choice(["：", ":", " "])
    return f"{who}{colon}{rng.choice(F.REPLY_OPEN)}{ask}{rng.choice(F.REPLY_END)}"


def _staff_mailbox(rng: random.Random, fake: Faker) -> str:
    """A mailbox that is not the sender's: labelled as a staff member's or a service's,
    given in a staff member's sentence (客服王芳让我把材料发到…), or one the sender wrote to
    (之前发邮件到…反映过)."""
    if rng.random() < 0.15:
        return rng.choice(F.SENDER_WROTE).format(m=_other_mail(rng, fake))
    if rng.random() < 0.7:
        return f"{_staff_mail_label(rng)}{rng.choice(F.SEPARATORS)}{_other_mail(rng, fake)}"
    said = rng.choice(F.STAFF_MAIL_SAYS).format(m=_other_mail(rng, fake))
    return f"{rng.choice(F.STAFF_ROLES)}{fake.name()}{said}"


def _other_mail(rng: random.Random, fake: Faker) -> str:
    """A mailbox that is not the sender's: a service box, or a person's (staff, a relay)."""
    if rng.random() < 0.6:
        return f"{rng.choice(['kefu', 'service', 'tousu', 'support', 'gd'])}@{fake.domain_name()}"
    return _email(rng, fake)


def _distractor(rng: random.Random) -> str:
    phone = rng.choice(["13", "15", "17", "18", "19"]) + "".join(rng.choices("0123456789", k=9))
    kind = rng.randrange(9)
    if kind == 7:
        return f"{rng.choice(F.REGION_LABELS)}{rng.choice(['：', ' '])}{rng.choice(F.REGIONS)}"
    if kind == 8:
        title = rng.choice(F.TITLES).format(t=rng.choice(F.TOPICS))
        return f"{rng.choice(F.TITLE_LABELS)}：{title}"
    if kind == 0:
        return (
            f"{rng.choice(['电话', '手机', '联系电话', '手机号'])}{rng.choice(F.SEPARATORS)}{phone}"
        )
    if kind == 1:
        return f"{rng.choice(['工单号', '订单号', '受理编号'])}：{rng.choice(['GD', 'DD', ''])}{rng.randrange(10**9, 10**10)}"
    if kind == 2:
        return f"{rng.randrange(2021, 2026)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日"
    if kind == 3:
        return f"{rng.choice(['金额', '多扣了', '账单'])}{rng.randrange(10, 2000)}.{rng.randrange(10, 99)}元"
    if kind == 4:
        return f"{rng.choice(['电表号', '户号', '客户编号', '燃气表号'])}：{rng.randrange(10**7, 10**12)}"
    if kind == 5:
        return f"（{rng.choice(['备用电话', '座机'])}0{rng.randrange(10, 999)}-{rng.randrange(10**6, 10**8)}）"
    return f"{rng.choice(['来电时间', '受理时间'])}：{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}"


def _address(rng: random.Random, fake: Faker) -> str:
    building = rng.choice(F.BUILDING).format(
        a=rng.randrange(1, 30), b=rng.randrange(1, 6), c=rng.randrange(101, 2999)
    )
    style = rng.randrange(3)
    if style == 0:
        return f"{fake.province()}{fake.city()}{fake.district()}区{fake.street_address()}{building}"
    if style == 1:
        return f"{fake.city()}{fake.street_name()}{rng.randrange(1, 999)}号{building}"
    return f"{fake.district()}区{fake.street_address()}{building or '附近'}"


def _email(rng: random.Random, fake: Faker) -> str:
    style = rng.randrange(4)
    if style == 0:
        return fake.email()
    if style == 1:
        return f"{rng.randrange(10**5, 10**10)}@qq.com"
    user = fake.user_name() + (str(rng.randrange(1, 9999)) if rng.random() < 0.5 else "")
    return f"{user}@{rng.choice(F.EMAIL_DOMAINS)}" if style == 2 else f"{user}@{fake.domain_name()}"


def _introduced(rng: random.Random, name: str | None, address: str | None) -> list[str]:
    """How the sender says who and where they are: "我是…", "住在…", or in one clause
    "我是{address}的住户{name}"."""
    if name and address and rng.random() < 0.25:
        return [f"{rng.choice(['我是', '本人是'])}{address}的{rng.choice(F.RESIDENTS)}{name}"]
    said = [rng.choice(F.NARRATIVE_NAME).format(v=name)] if name else []
    return said + ([rng.choice(F.NARRATIVE_ADDRESS).format(v=address)] if address else [])


def _urged(rng: random.Random, complaint: str) -> str:
    """The complaint as said: mostly followed by a plea that is not part of it."""
    if rng.random() < 0.7:
        return complaint + rng.choice(["，", "，", "，", "。", "！", " "]) + _plea(rng)
    return complaint


def _plea(rng: random.Random) -> str:
    """Urging, waiting, indignation, a rhetorical question or thanks, each as often as the
    others: a known phrase, or (mostly) one composed from parts, so the model learns what a
    plea says rather than a list of them; sometimes two."""
    kind = rng.choice(["urge", "wait", "outcry", "rhetoric", "thanks"])
    known = rng.random() < 0.3
    if kind == "urge" and known:
        plea = rng.choice(F.PLEAS)
    elif kind == "urge":
        ask = rng.choice(F.PLEA_ASK) + rng.choice(F.PLEA_SOON) + rng.choice(F.PLEA_DO)
        plea = ask + rng.choice(F.PLEA_END)
    elif kind == "wait":
        plea = rng.choice(F.PLEA_WAIT) + rng.choice(F.PLEA_AWAITED) + rng.choice(F.PLEA_END)
    elif kind == "outcry" and known:
        plea = rng.choice(F.OUTCRIES)
    elif kind == "outcry":
        plea = "".join(rng.choice(part) for part in (F.OUTCRY_HOW, F.OUTCRY_WHAT, F.OUTCRY_END))
    elif kind == "rhetoric" and known:
        plea = rng.choice(F.RHETORIC).format(who=rng.choice(F.ASKED))
    elif kind == "rhetoric":
        who = rng.choice([*F.ASKED, ""])
        plea = who + rng.choice(F.RHETORIC_ASK) + rng.choice(F.RHETORIC_END)
    else:
        plea = rng.choice(F.THANKS)
    if rng.random() < 0.12:
        plea += rng.choice(["，", "！", " "]) + rng.choice(F.PLEAS)
    return plea


def _complaint(rng: random.Random) -> str:
    """What happened, in one clause or several: the problem, then none to three of how long,
    what it caused and what else happened, sometimes a second problem and a demand; so the
    model cannot count clauses to find where a complaint ends."""
    subjects, problems = F.DOMAINS[rng.choice(list(F.DOMAINS))]
    problem, other = rng.sample(problems, 2)
    clauses = [rng.choice(subjects) + problem]
    if rng.random() < 0.2:  # a second problem in the same domain
        clauses.append("而且" + other)
    more = rng.choices([0, 1, 2, 3], weights=[35, 30, 22, 13])[0]
    kinds = rng.sample(["duration", "consequence", "detail", "detail"], more)
    if "duration" in kinds:  # how long comes right after the problem(s)
        clauses.append(rng.choice(F.DURATIONS))
    clauses += [
        rng.choice(F.CONSEQUENCES) if kind == "consequence" else _detail(rng)
        for kind in kinds
        if kind != "duration"
    ]
    if rng.random() < 0.35:
        clauses.append(rng.choice(F.DEMANDS))
    return "，".join(dict.fromkeys(clauses))  # two details may coincide: say it once


def _detail(rng: random.Random) -> str:
    """Something else that happened: what someone did, what it cost, or how things stand."""
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(F.DETAIL_WHO) + rng.choice(F.DETAIL_DID)
    if kind < 0.65:
        return rng.choice(F.DETAIL_COST).format(k=rng.randrange(2, 9), n=rng.randrange(30, 900))
    return rng.choice(F.DETAIL_STATE)
