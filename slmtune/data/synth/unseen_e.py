"""Held-out forms, set E: written on 2026-12-03 (night) before any training-side change of that
session, apart from the training generators and from sets A-D, never used for training or for
choosing defaults: the blind set for changes made after set D had been looked at.

Labels follow the training tasks' rules: complaint values are copied exactly from the text
(null when absent), the question is the complaint itself (not a plea to hurry, not the
sender's details); a page's title and content are copied, its publishtime is YYYY-MM-DD.
Each record has a `form` field naming its layout.

Complaint forms
  csv         a spreadsheet export: a header row, then the record's row, quoted where a value
              holds a comma, empty cells where the caller left nothing
  xml         a legacy hotline system's XML export: nested elements, empty ones self-closed,
              the complaint in CDATA, the operator's id and mailbox in the metadata
  summary     a hotline agent's third-person summary (来电人反映…), the handling unit and its
              deadline under it
  review      an app-store review: stars, the reviewer's nickname, a headline, the review,
              signed or not, and the developer's reply with its service mailbox
Policy page forms
  xxgk        an information-disclosure page: a metadata block (索引号, 主题分类, 发布机构,
              生成日期, 名称, 文号, 发布日期) above the title and body, a QR-code line below
  pdfwrap     a PDF's text layer: the body hard-wrapped every ~30 characters, the issuer and
              the date signed at the end
  jiedu       a policy-interpretation page (政策解读): its own title names the document it
              explains, the body in numbered sections, the related document linked below
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from faker import Faker

from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.data.synth.policy_pages import POLICY_SYSTEM_PROMPT
from slmtune.data.synth.unseen import WRITTEN, held_out_record

COMPLAINT_FORMS = ("csv", "xml", "summary", "review")
POLICY_FORMS = ("xxgk", "pdfwrap", "jiedu")

# -- complaints ----------------------------------------------------------------------------

GRIEVANCES = [
    "小区地下车库积水半个月没人抽，好几辆车泡坏了",
    "充电桩扣了四十块钱却一直充不上电",
    "快递驿站把包裹放在门口淋湿了还不赔",
    "家里水管爆裂报修三天没人上门",
    "话费账单里多出一个从没订过的视频会员",
    "路灯坏了两个月，晚上回家要摸黑走一段",
    "燃气表读数比实际用量多了一倍",
    "公交站牌改了线路却没有任何通知",
    "新装的空调漏水，售后说要另外收上门费",
    "光纤入户后网速只有套餐的一半",
]
PLEAS = ["请尽快处理", "希望早日解决", "望重视", "等回复", "谢谢"]
HEADLINES = ["差评！", "太坑了", "失望", "求解决", "别再这样了"]
SERVICE = ["kefu", "service", "support", "help"]


def generate_unseen_e_complaints(n: int, seed: int) -> list[dict]:
    """`n` complaints, the forms taken in turn (so every form has ~n/4 records)."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 173205)
    records = []
    for i in range(n):
        form = COMPLAINT_FORMS[i % len(COMPLAINT_FORMS)]
        v = {
            "name": fake.name(),
            "address": rng.choice(
                [
                    f"{fake.city()}{fake.street_name()}{rng.randrange(1, 300)}号"
                    f"{rng.choice(['锦华苑', '金色家园', '滨江花园', '桃源居'])}{rng.randrange(1, 20)}栋"
                    f"{rng.randrange(1, 4)}单元{rng.randrange(101, 1803)}",
                    f"{fake.province()}{fake.city_name()}县{rng.choice(['城关', '新安', '黄桥'])}镇"
                    f"{rng.choice(['杨庄', '李家', '前进'])}村{rng.randrange(1, 12)}组",
                ]
            ),
            "email": rng.choice(
                [
                    f"{rng.randrange(10**5, 10**10)}@qq.com",
                    f"{fake.user_name()}@{rng.choice(['foxmail.com', '126.com', 'gmail.com'])}",
                ]
            ),
            "question": rng.choice(GRIEVANCES),
        }
        keep = {k: rng.random() < p for k, p in (("name", 0.7), ("address", 0.6), ("email", 0.6))}
        label = {k: (v[k] if keep.get(k, True) else None) for k in v}
        text = E_FORMS[form](rng, fake, label)
        for key, value in label.items():
            assert value is None or value in text, (form, key, value)  # copied, by construction
        records.append(held_out_record(COMPLAINT_SYSTEM_PROMPT, text, label, form))
    return records


def _csv(rng, fake, v):
    def cell(value: str | None) -> str:
        return f'"{value}"' if value and ("," in value or "，" in value) else (value or "")

    when = fake.date_time_between_dates(*WRITTEN)
    complaint = v["question"] + rng.choice(["", f"，{rng.choice(PLEAS)}"])
    row = [f"GD{when:%Y%m%d}{rng.randrange(1000, 9999)}", f"{when:%Y/%m/%d %H:%M}", v["name"],
           v["address"], v["email"], complaint, rng.choice(["待受理", "处理中"])]  # fmt: skip
    return "\n".join(
        ["工单号,提交时间,姓名,联系地址,电子邮箱,问题描述,处理状态", ",".join(cell(c) for c in row)]
    )


def _xml(rng, fake, v):
    def element(tag: str, value: str | None) -> str:
        return f"<{tag}>{value}</{tag}>" if value else f"<{tag}/>"

    operator = f"op{rng.randrange(100, 999)}"
    when = fake.date_time_between_dates(*WRITTEN)
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<record id="{rng.randrange(10**7, 10**8)}" created="{when:%Y-%m-%dT%H:%M:%S}">',
            f"  <meta><operator>{operator}</operator>"
            f"<operatorMail>{operator}@hotline.gov.cn</operatorMail></meta>",
            "  <caller>",
            f"    {element('fullName', v['name'])}",
            f"    {element('homeAddress', v['address'])}",
            f"    {element('email', v['email'])}",
            "  </caller>",
            f"  <content><![CDATA[{v['question']}。{rng.choice(PLEAS)}]]></content>",
            f"  <category>{rng.choice(['城建', '通信', '能源', '交通'])}</category>",
            "</record>",
        ]
    )


def _summary(rng, fake, v):
    when = fake.date_time_between_dates(*WRITTEN)
    lines = [
        "【热线工单摘要】",
        f"来电时间：{when:%Y年%m月%d日 %H时%M分}",
        f"来电人：{v['name'] or '未留姓名'}",
        f"诉求地址：{v['address'] or '无'}",
        f"来电人反映：{v['question']}。",
    ]
    if v["email"]:
        lines.append(f"来电人留有电子邮箱{v['email']}，要求书面答复。")
    lines.append(f"承办单位：{fake.company()}  办理时限：{rng.randrange(3, 16)}个工作日")
    lines.append(f"记录人：话务员{rng.randrange(1000, 9999)}号")
    return "\n".join(lines)


def _review(rng, fake, v):
    when = fake.date_time_between_dates(*WRITTEN)
    body = f"{v['question']}，{rng.choice(PLEAS)}。"
    if v["address"]:
        body += f"我住{v['address']}，"
    if v["email"]:
        body += f"有问题联系我{v['email']}。"
    if v["name"]:
        body += f"——{v['name']}"
    stars = rng.randrange(1, 3)
    return "\n".join(
        [
            f"{'★' * stars}{'☆' * (5 - stars)}  {fake.user_name()}  {when:%Y-%m-%d}",
            rng.choice(HEADLINES),
            body.rstrip("，"),
            f"开发者回复：您好，给您带来不便非常抱歉，请将问题发送至"
            f"{rng.choice(SERVICE)}@{rng.choice(['app', 'shop', 'life', 'go'])}.com.cn，"
            "我们会尽快为您处理。",
        ]
    )


E_FORMS = {"csv": _csv, "xml": _xml, "summary": _summary, "review": _review}

# -- policy pages --------------------------------------------------------------------------

SUBJECTS = ["城市更新", "职业技能提升", "新能源汽车推广", "中小企业纾困", "婴幼儿照护服务",
            "历史文化街区保护"]  # fmt: skip
KINDS = ["管理办法", "行动计划", "若干措施", "实施方案"]
SENTENCES = [
    "第一条 为规范{s}工作，根据有关法律法规，结合本市实际，制定本{k}。",
    "第二条 市{dept}负责本市{s}的统筹协调和监督管理。",
    "第三条 符合条件的项目，按实际投资额的{p}%给予一次性补助，最高不超过{m}万元。",
    "第四条 申报单位应当于每年{mo}月30日前通过政务服务网提交申报材料。",
    "第五条 对同一项目，不得重复享受本市同类政策。",
    "第六条 违反本{k}规定的，由主管部门责令限期改正，{p}年内不得申报。",
    "第七条 本{k}自印发之日起施行，有效期至{y}年12月31日。",
]
DEPTS = ["工业和信息化局", "人力资源和社会保障局", "自然资源和规划局", "卫生健康委员会", "商务局"]


def generate_unseen_e_policy_pages(n: int, seed: int) -> list[dict]:
    """`n` pages, the forms taken in turn."""
    rng, fake = random.Random(seed), Faker("zh_CN")
    fake.seed_instance(seed + 223606)
    records = []
    for i in range(n):
        form = POLICY_FORMS[i % len(POLICY_FORMS)]
        s, k, dept = rng.choice(SUBJECTS), rng.choice(KINDS), rng.choice(DEPTS)
        city = fake.city_name() + "市"
        doc = f"{city}{s}{k}"
        published = date(2021, 1, 4) + timedelta(days=rng.randrange(1800))
        chosen = sorted(rng.sample(range(len(SENTENCES)), rng.randrange(3, 7)))
        sentences = [
            SENTENCES[c].format(s=s, k=k, dept=dept, m=rng.randrange(50, 3000),
                                mo=rng.randrange(3, 12), p=rng.randrange(2, 31),
                                y=published.year + rng.randrange(2, 6))
            for c in chosen
        ]  # fmt: skip
        page = {"doc": doc, "sentences": sentences, "date": published, "dept": dept, "city": city}
        title, text, content = PAGE_E_FORMS[form](rng, fake, page)
        assert title in text and content in text, form
        label = {"title": title, "publishtime": published.isoformat(), "content": content}
        records.append(held_out_record(POLICY_SYSTEM_PROMPT, text, label, form))
    return records


def _xxgk(rng, fake, p):
    d, title = p["date"], rng.choice([p["doc"], f"关于印发{p['doc']}的通知"])
    written = d - timedelta(days=rng.randrange(2, 20))
    content = "\n".join(p["sentences"])
    text = "\n".join(
        [
            f"索引号：{rng.randrange(10**10, 10**11)}/{d.year}-{rng.randrange(1, 999):05d}\t"
            f"主题分类：{rng.choice(['综合政务', '城乡建设', '劳动就业', '工业、交通'])}",
            f"发布机构：{p['city']}{p['dept']}\t生成日期：{written:%Y-%m-%d}",
            f"名　　称：{title}",
            f"文　　号：{p['city'][0]}{rng.choice(['政办', '工信', '人社'])}规〔{d.year}〕"
            f"{rng.randrange(1, 30)}号\t发布日期：{d:%Y-%m-%d}",
            title,
            content,
            "【打印本页】【关闭窗口】",
            "扫一扫在手机打开当前页",
        ]
    )
    return title, text, content


def _pdfwrap(rng, fake, p):
    d, title, width = p["date"], p["doc"], rng.randrange(26, 36)
    flat = "".join(p["sentences"])
    content = "\n".join(flat[i : i + width] for i in range(0, len(flat), width))
    text = "\n".join(
        [
            f"{p['city']}{p['dept']}文件",
            title,
            content,
            f"{p['city']}{p['dept']}",
            f"{d.year}年{d.month}月{d.day}日",
            f"— {rng.randrange(1, 4)} —",
        ]
    )
    return title, text, content


def _jiedu(rng, fake, p):
    d = p["date"]
    title = rng.choice([f"《{p['doc']}》政策解读", f"关于《{p['doc']}》的解读"])
    parts = ["一、出台背景", p["sentences"][0], "二、主要内容", *p["sentences"][1:]]
    content = "\n".join(parts)
    text = "\n".join(
        [
            "首页 > 政务公开 > 政策解读",
            title,
            f"发布时间：{d:%Y-%m-%d}  来源：{p['city']}{p['dept']}  字号：大 中 小",
            content,
            f"相关文件：{p['doc']}",
            f"解读人：{p['dept']}{rng.choice(['办公室', '政策法规处'])}",
        ]
    )
    return title, text, content


PAGE_E_FORMS = {"xxgk": _xxgk, "pdfwrap": _pdfwrap, "jiedu": _jiedu}
