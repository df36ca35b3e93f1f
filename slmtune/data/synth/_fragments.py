"""Word lists the synthetic generators compose from. Data, not logic."""

# domain -> (subjects, problems). A complaint = subject + problem, then none to several of a
# duration, a consequence and a detail, sometimes a demand (complaints.py `_complaint`).
DOMAINS: dict[str, tuple[list[str], list[str]]] = {
    "broadband": (
        ["家里的宽带", "光猫", "我办的千兆宽带", "小区的网络", "路由器那边的网", "家里WiFi"],
        [
            "经常断网，一天断好几次",
            "网速特别慢，测速只有几兆",
            "晚上一到八点就卡得打不开网页",
            "光猫一直亮红灯连不上",
            "报修了师傅一直没有上门",
            "说好的千兆实际只有一百兆",
        ],
    ),
    "mobile": (
        ["我的手机卡", "这个手机号", "手机流量", "我的5G套餐", "副卡", "手机信号"],
        [
            "莫名其妙多扣了流量费",
            "在家里完全没有信号",
            "被开通了我没订过的增值业务",
            "套餐降档一直办不下来",
            "流量明明没用完却提示超出",
            "打电话总是断断续续听不清",
        ],
    ),
    "billing": (
        ["上个月的话费账单", "这个月的扣费", "我的账户余额", "自动续费", "发票", "积分兑换"],
        [
            "比平时多扣了一百多块钱",
            "出现了几笔看不懂的收费",
            "充值以后一直没有到账",
            "取消了还在继续扣钱",
            "申请了很久一直开不出来",
            "兑换以后东西一直没有收到",
        ],
    ),
    "power": (
        ["我们小区的供电", "家里的电", "楼道的电路", "我家电表", "这一片的线路", "村里的变压器"],
        [
            "这周已经停电三次了也没有通知",
            "电压不稳，灯一直闪",
            "电表走得特别快，电费翻倍",
            "跳闸以后一直恢复不了",
            "抢修的人来了看一眼就走了",
            "晚上用电高峰老是断电",
        ],
    ),
    "water": (
        ["家里的自来水", "小区的水压", "水表", "供水管道", "热水", "楼上的下水管"],
        [
            "水是黄的还有一股怪味",
            "水压太低，高层根本用不了",
            "水表数字不对多收了水费",
            "管道漏水好几天没人修",
            "突然停水也不提前通知",
            "一直往我家渗水",
        ],
    ),
    "gas": (
        ["家里的燃气", "燃气表", "天然气管道", "燃气灶那边", "燃气公司的安检", "IC卡燃气表"],
        [
            "充了钱却显示余额为零",
            "闻到很明显的燃气味",
            "安检人员态度很差还强制推销",
            "表坏了一直没人来换",
            "开通申请交上去一个月没动静",
            "阀门关不严",
        ],
    ),
    "property": (
        ["小区物业", "楼下的停车场", "电梯", "小区门禁", "垃圾清运", "物业费"],
        [
            "电梯坏了一个多星期没人修",
            "乱收停车费还不给票据",
            "门禁卡一直刷不开",
            "垃圾堆在门口好几天没人清",
            "物业费涨了也没有公示",
            "保安晚上根本不巡逻",
        ],
    ),
    "delivery": (
        ["我网购的快递", "买的冰箱", "退货的包裹", "外卖订单", "上门安装服务", "售后维修"],
        [
            "显示签收了但我根本没收到",
            "送来的时候外包装已经破了",
            "寄回去半个月还没退款",
            "送错地址还不承认",
            "约好的时间没人来",
            "修了三次还是一样的问题",
        ],
    ),
    "bank": (
        ["我的信用卡", "银行卡", "贷款还款", "手机银行", "理财产品", "ATM机"],
        [
            "被盗刷了两笔消费",
            "莫名其妙被冻结了",
            "按时还款了却显示逾期",
            "登录一直提示系统错误",
            "被客户经理误导买了高风险产品",
            "吞卡以后没人处理",
        ],
    ),
}

DURATIONS = [
    "已经一个星期了",
    "持续快半个月了",
    "从上个月开始就这样",
    "今天早上又出现了",
    "最近三天",
    "反反复复好几个月了",
    "前天开始",
    "这两天尤其严重",
    "从去年年底到现在",
    "每次下雨就这样",
]
CONSEQUENCES = [
    "孩子上网课都上不了",
    "家里老人很着急",
    "严重影响正常工作",
    "冰箱里的东西全坏了",
    "我打了好几次客服电话都没人解决",
    "耽误了我好几天的生意",
    "晚上根本睡不好",
    "已经给我造成了经济损失",
    "邻居们也都有同样的问题",
    "客服每次都让我再等等",
]
# what else happened, composed from parts (who + what they did, or what it cost and how
# much), so a fact inside the complaint is told apart from a plea by what it says, not by a list
DETAIL_WHO = ["上门的人", "售后", "营业厅", "维修工", "网点", "那边", "值班的", "负责的人", "公司"]
DETAIL_DID = ["来了也没带工具", "一问三不知", "只会让我填单子", "把问题推给厂家", "电话永远占线",
              "登记完就没下文了", "不肯出书面说明", "把我的单子弄丢了", "让我换个渠道再报", "当面答应得好好的",
              "说是我自己操作不当", "查了半天说没有记录"]  # fmt: skip
DETAIL_COST = ["为这事跑了{k}趟", "前后打了{k}次电话", "白等了{k}天", "多交了{n}块钱", "损失了{n}多元",
               "请了{k}天假在家等", "已经投诉{k}次了", "修一次收了{n}元"]  # fmt: skip
DETAIL_STATE = ["到现在还是老样子", "钱一直没退回来", "事先没有任何提示", "周围几户都一样",
                "家里的东西都受了潮", "出门都成了问题", "单据上的金额也对不上", "换了新的照样不行",
                "白天晚上都这样", "连个解释都没有", "问题越来越严重", "夜里根本没法休息"]  # fmt: skip
# what the complainant claims specifically (always "要求…", so it reads apart from a plea to
# hurry, which starts 请/希望/麻烦…): part of the complaint (its label)
DEMANDS = [
    "要求退还多收的费用",
    "要求上门重新检修",
    "要求更换新表",
    "要求赔偿损失",
    "要求彻底修好",
    "要求核实后把钱退给我",
    "要求恢复原来的套餐",
    "要求把维修记录调出来查一下",
    "要求免除违约金",
    "要求按合同赔偿",
]
# urging, courtesy and indignation after the complaint: never part of it
PLEAS = [
    "希望尽快处理",
    "请尽快派人来看看",
    "麻烦尽快回复我",
    "希望相关部门重视一下",
    "请尽快解决并给我回个电话",
    "不解决的话我就向12315投诉",
    "你们到底管不管？",
    "到底有没有人管啊",
    "谢谢！",
    "拜托了",
    "太气人了",
    "我真的受不了了",
    "盼回复",
    "求处理",
    "坐等回复",
    "能不能管一管",
    "急急急",
    "求帮助！",
    "速回",
]
# pleas composed from parts (ask + how soon + what to do + how it ends), so that `question`
# ends where the urging starts, not where a known phrase starts
PLEA_ASK = ["请", "麻烦", "希望", "恳请", "望", "盼", "求", "拜托", "还请", "务必"]
PLEA_SOON = ["尽快", "早日", "赶紧", "抓紧", "马上", "及时", "", ""]
PLEA_DO = ["处理", "解决", "答复", "回复", "给个说法", "派人来看看", "管一管", "跟进", "看一下",
           "给个答复", "落实", "重视"]  # fmt: skip
PLEA_END = ["", "", "", "！", "！！", "，谢谢", "，谢谢！", "~", "。谢谢", "!!!", "，急"]
# waiting for an answer: wait + what for + how it ends (等回复, 坐等处理结果…)
PLEA_WAIT = ["等", "坐等", "盼", "期待", "静候", "在线等", "等着", "等你们的"]
PLEA_AWAITED = ["回复", "答复", "处理结果", "说法", "消息", "结果", "回音", "通知"]
OUTCRIES = ["太过分了", "气死人了", "真是无语", "忍无可忍", "简直离谱", "让人寒心", "服了",
            "急！！！", "还讲不讲理"]  # fmt: skip
# indignation composed: how + what + end (实在太坑人了！…)
OUTCRY_HOW = ["太", "真是太", "实在太", "简直太", "也太", "真的太", "越来越"]
OUTCRY_WHAT = ["过分", "离谱", "气人", "坑人", "欺负人", "不负责任", "让人失望", "不像话", "敷衍"]
OUTCRY_END = ["了", "了！", "了吧", "了！！", "了。。。", "了啊"]
RHETORIC = ["{who}到底管不管？", "还有没有人管？", "这合理吗？", "{who}就是这么服务的？",
            "难道就没人负责吗？", "这叫什么事？", "{who}还要拖到什么时候？"]  # fmt: skip
ASKED = ["你们", "物业", "相关部门", "运营商", "贵公司", "有关领导", "客服"]
# a rhetorical question composed: who is asked + what + end (物业还管不管？…)
RHETORIC_ASK = ["到底管不管", "还管不管", "管不管", "能不能管管", "就没人管吗", "有没有人管管",
                "还要拖多久", "打算怎么处理", "给个说法行不行", "是不是不想干了",
                "就这么不了了之吗"]  # fmt: skip
RHETORIC_END = ["？", "？？", "?", "！", "", "啊？", "？！"]
THANKS = ["谢谢", "谢谢！", "感谢", "多谢", "辛苦了", "麻烦了", "谢谢你们", "先谢谢了", "感谢！",
          "辛苦你们了"]  # fmt: skip
# spoken fillers of a transcribed call or voice message
SPOKEN = ["嗯", "那个", "就是", "呃", "然后", "对", "喂"]

NAME_LABELS = ["姓名", "名字", "联系人", "投诉人", "客户姓名", "本人姓名", "称呼", "户主", "Name"]
# A sender's name is as often labelled by their role: a role and an ending (反映人, 报修人姓名,
# 求助者). 来信, 来电, 申请 and 留言 are left out on purpose: the held-out forms use them, so
# what they score there measures reading a role, not remembering the word.
SENDER_ROLES = ["投诉", "反映", "诉求", "报修", "举报", "求助", "咨询", "来访", "报障", "建议"]
SENDER_ENDS = ["人", "人", "人姓名", "者"]
ADDRESS_LABELS = [
    "地址",
    "住址",
    "家庭住址",
    "所在地址",
    "联系地址",
    "详细地址",
    "地扯",
    "位置",
    "Address",
]
EMAIL_LABELS = ["邮箱", "电子邮箱", "email", "E-mail", "邮件", "Email地址", "联系邮箱", "油箱"]
QUESTION_LABELS = [
    "问题",
    "投诉内容",
    "诉求",
    "反映问题",
    "情况说明",
    "具体问题",
    "问题描述",
    "投诉事项",
    "Complaint",
]
# what a form shows in a field the sender left empty: the field is absent (null)
EMPTY = ["无", "暂无", "-", "/", "（未填写）", "不详", "N/A", "", "匿名", "（空）", "未留"]
SEPARATORS = ["：", ":", "：", " : ", "：　", "是", " ", "-"]
FIELD_GLUE = ["\n", "\n", "，", "；", " | ", "  ", "。", "\n\n", ", "]

GREETINGS = [
    "",
    "",
    "您好，",
    "你好！",
    "客服你好，",
    "领导好：",
    "尊敬的工作人员：\n",
    "喂，",
    "投诉！",
    "【用户来信】",
    "麻烦看一下：",
    "急！！！",
]
FILLERS = ["嗯", "那个", "就是说", "麻烦你们了", "真的很无语", "说实话", "我想反映一下", "怎么说呢"]
TRAILERS = [
    "",
    "",
    "",
    "谢谢！",
    "发自我的华为手机",
    "——来自iPhone客户端",
    "以上情况属实。",
    "盼复",
    "此致敬礼",
    "[该消息由系统自动转写]",
    "（语音转文字，可能有错别字）",
    "请勿直接回复本邮件",
]

RESIDENTS = ["住户", "业主", "租户", "居民", "老用户"]
NARRATIVE_NAME = ["我是{v}", "我叫{v}", "本人{v}", "我这边是{v}", "鄙人{v}"]
NARRATIVE_ADDRESS = ["住在{v}", "家住{v}", "我家在{v}", "地址在{v}", "住址是{v}"]
NARRATIVE_EMAIL = ["我的邮箱是{v}", "邮箱{v}", "有结果请发到{v}", "可以发邮件到{v}", "回复请发{v}"]

EMAIL_DOMAINS = [
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "foxmail.com",
    "139.com",
    "gmail.com",
    "outlook.com",
    "sohu.com",
    "yeah.net",
]
BUILDING = ["", "", "{a}栋{b}单元{c}室", "{a}号楼{c}", "{a}幢{c}号", "{a}单元{c}"]

# Other people a complaint mentions (staff, relays, service mailboxes): never the answer.
STAFF_ROLES = ["客服", "维修师傅", "营业员", "经理", "工作人员", "片区负责人", "值班员", "安装工"]
HANDLER_LABELS = ["承办人", "经办人", "受理人", "处理人", "记录人", "受理坐席", "派单员"]
# ...and a handler's by what they do with the case (跟进人, 回访员, 审核人姓名); 登记 and 转办
# left out for the same reason as above.
STAFF_ACTS = [
    "承办",
    "经办",
    "受理",
    "处理",
    "接线",
    "回访",
    "派单",
    "审核",
    "跟进",
    "督办",
    "办理",
]
STAFF_ENDS = ["人", "人", "员", "人姓名"]
STAFF_SAYS = ["说会处理", "让我再等等", "说不归他们管", "答应三天内回复", "说要走流程"]
OTHER_MAIL_LABELS = ["客服邮箱", "抄送", "官方邮箱", "工作人员邮箱", "受理邮箱", "经办人邮箱"]
# Whose mailbox a label names is read from the role before the mail word: the sender's
# (反映人邮箱, 求助者Email) or a staff member's (跟进人邮箱, 值班员联系邮箱), never a list of
# labels. 信箱, 转办 and 发送至 are left out: the held-out forms use them.
MAIL_WORDS = ["邮箱", "邮箱", "Email", "电子邮箱", "邮件地址", "E-mail", "联系邮箱"]
# ...and a staff member giving their own mailbox in a sentence
STAFF_MAIL_SAYS = ["让我把材料发到{m}", "说可以发邮件到{m}", "留了邮箱{m}", "说有问题发{m}",
                   "说照片发{m}就行"]  # fmt: skip
# an organisation answering under the text in its own voice, naming its own mailbox (or
# a staff member's): who answers, an opening, what to send where, and an ending
REPLY_WHO = ["官方回复", "客服回复", "商家回复", "平台回复", "工作人员回复", "自动回复",
             "【系统消息】", "回复", "店铺回复", "管理员回复"]  # fmt: skip
REPLY_OPEN = ["您好，", "亲，", "尊敬的用户您好，", "", "不好意思，", "感谢您的反馈，",
              "您的留言已收到，"]  # fmt: skip
REPLY_ASK = ["烦请将{x}提交至{m}", "可发邮件到{m}", "麻烦把{x}发到{m}", "请联系{m}",
             "详情请发邮件至{m}", "{x}可以发给{m}", "请通过{m}与我们联系"]  # fmt: skip
REPLY_WHAT = ["相关截图", "问题详情", "订单号和联系方式", "照片", "材料", "具体情况"]
REPLY_END = ["，会尽快给您答复。", "，我们将在三个工作日内回复。", "。", "，谢谢！",
             "，会有专人跟进。", ""]  # fmt: skip
# the sender naming a mailbox they wrote to: the recipient's, never theirs
SENDER_WROTE = ["之前发邮件到{m}反映过", "也给{m}写过邮件", "按客服说的发到{m}了",
                "已经投诉到{m}了", "往{m}发了好几封邮件"]  # fmt: skip
RELAYS = ["社区网格员", "热线话务员", "村委会", "驻点工作人员", "楼栋长", "志愿者"]
RELAY_VERBS = ["代为反映", "转述", "记录", "登记", "转交"]
SUBJECTS = ["投诉", "紧急问题", "关于近期服务的意见", "再次反映", "求助", "未解决的问题"]
# a title or subject that names the complaint's topic: never the complaint itself
TOPICS = ["宽带", "电费", "供水", "物业", "燃气", "通信", "停电", "收费", "服务态度"]
TITLES = ["关于{t}问题的投诉", "{t}问题反映", "关于{t}的意见", "投诉{t}", "【{t}】求助"]
TITLE_LABELS = ["标题", "主题", "事由", "Subject", "留言标题", "诉求类别"]
# where a platform says a message came from: never the sender's address
REGIONS = ["江苏", "广东", "浙江杭州", "北京", "四川省", "湖北武汉", "山东青岛", "上海",
           "河南郑州", "辽宁省"]  # fmt: skip
REGION_LABELS = ["IP属地", "号码归属地", "来电归属地", "发布于", "定位"]
# a handle or nickname of the sender: not a name
HANDLE_LABELS = ["昵称", "用户名", "微信昵称", "账号", "ID", "网名"]
# someone else's complaint or an earlier case the text mentions: never the question
OTHER_CASES = ["历史工单：{c}（已办结）", "上次反映的“{c}”已经解决了", "邻居{n}也说{c}",
               "关联工单：{c}", "楼下{n}：{c}"]  # fmt: skip
INLINE_ADDRESS = ["，在{v}", "，地点是{v}", "，就在{v}", "（{v}）", "，位置：{v}"]
