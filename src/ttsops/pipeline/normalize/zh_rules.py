"""Our rules for Chinese text, run before WeTextProcessing's grammar (``zh.py``).

They cover what the grammar reads wrongly or not at all in service texts; each is one
regular expression and one replacement, applied in ``PRE`` order:

* phone numbers digit by digit, 1 as 幺: 11-digit mobiles (``138-1234-5678`` and
  ``+86`` included), 400/800 numbers, landlines with an area code (``010-12345678``), and
  any number after a phone word (电话, 热线, 拨打, 致电, 客服...: ``拨打12315``);
* codes digit by digit, 1 as 幺: after a code word (订单号, 单号, 验证码, 取件码, 尾号...),
  letters followed by 6+ digits (``SF1234567890``), any run of 12+ digits, room numbers
  (``502室``);
* thousands separators (``1,234,567``), other currencies and currency codes
  (``HK$``, ``US$``, ``₩``, ``100USD``...), a minus before a percentage (``-3%`` ->
  负百分之三), hyphens after Latin letters (``COVID-19``), versions (``v2.3.1``),
  ``×`` between numbers, ``100+`` (一百多), units the grammar does not know (``mAh``,
  ``g``, ``V``, ``W``, ``kWh``, ``Hz``, ``Mbps``...).

``POST`` runs after the grammar (``第两`` -> ``第二``), ``SYMBOLS`` names the symbols a
Chinese listener expects to hear (``&`` 和, ``@`` 艾特, ``>`` 大于...); ``zh.py`` drops any
other symbol.
"""

from __future__ import annotations

from collections.abc import Callable

import regex

DIGITS = "零一二三四五六七八九"
YAO = "零幺二三四五六七八九"


def digits(s: str, yao: bool = True) -> str:
    """Each digit of ``s`` as a Chinese digit (1 as 幺 when ``yao``); other characters
    except separators (-, space, parentheses) are kept."""
    table = YAO if yao else DIGITS
    return "".join(table[int(c)] if c.isdigit() else c for c in s if c not in "- ()（）")


def _four(n: int) -> str:
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            out += ("零" if zero and out else "") + DIGITS[d] + unit
            zero = False
        else:
            zero = True
    return out


def cardinal(n: int) -> str:
    """A whole number (below 10^12) in Chinese: 10 -> 十, 105 -> 一百零五, 10001 ->
    一万零一 (for fractions; the grammar reads every other number)."""
    if n == 0:
        return "零"
    out = ""
    for value, unit in ((10**8, "亿"), (10**4, "万"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if out and d < 1000:
                out += "零"
            out += _four(d) + unit
    return out[1:] if out.startswith("一十") else out


def _fraction(m: regex.Match[str]) -> str:
    return f"{cardinal(int(m['d']))}分之{cardinal(int(m['n']))}"


def _phone(m: regex.Match[str]) -> str:
    cc = m.group("cc")
    head = "加八六" if cc and cc.lstrip().startswith("+") else ("八六" if cc else "")
    return head + digits(m.group("num"))


_PHONE_WORDS = (r"电话|手机|手机号|热线|拨打|致电|拨|联系方式|客服|座机|号码|来电|传真|"
                r"[Tt]el|TEL")
_CODE_WORDS = (r"订单号|订单编号|单号|运单号|快递单号|物流单号|工单号|编号|卡号|账号|帐号|尾号|"
               r"验证码|校验码|动态码|取件码|取货码|提货码|取餐码|密码|会员号|流水号|序列号|"
               r"券码|兑换码|身份证号|房间号|房号|房间|学号|工号|车次|航班号?|型号")
_CURRENCIES = {"HK$": "港元", "US$": "美元", "NT$": "新台币", "S$": "新加坡元", "A$": "澳元",
               "C$": "加元", "JP¥": "日元", "₩": "韩元", "₽": "卢布", "₹": "卢比",
               "฿": "泰铢", "₫": "越南盾"}
_CODES = {"USD": "美元", "RMB": "元", "CNY": "元", "EUR": "欧元", "GBP": "英镑",
          "HKD": "港元", "JPY": "日元", "KRW": "韩元"}
_UNITS = {"mAh": "毫安时", "kWh": "千瓦时", "kW": "千瓦", "MHz": "兆赫", "GHz": "吉赫",
          "kHz": "千赫", "Hz": "赫兹", "Mbps": "兆比特每秒", "Gbps": "吉比特每秒",
          "mg": "毫克", "g": "克", "V": "伏", "W": "瓦", "min": "分钟", "ms": "毫秒",
          "dB": "分贝", "rpm": "转每分钟"}
_NUM = r"\d+(?:\.\d+)?"

Rule = tuple[regex.Pattern[str], str | Callable[[regex.Match[str]], str]]


def _rx(p: str) -> regex.Pattern[str]:
    return regex.compile(p, regex.V1)


PRE: list[Rule] = [
    # a typographic minus is a minus
    (_rx(r"[\u2212\u2012\u2013\ufe63\uff0d](?=\d)"), "-"),
    # ½ becomes 1⁄2 in NFKC: a fraction slash is a fraction
    (_rx(r"(?<=\d)\u2044(?=\d)"), "/"),
    # fractions 1/3 (the grammar misreads some: 约1/2 -> 二分之约一); not dates 2024/6/12
    (_rx(r"(?<![\d./])(?P<n>\d{1,6})/(?P<d>[1-9]\d{0,5})(?![\d./])"), _fraction),
    # phone numbers: mobiles (with +86), 400/800, landlines with an area code
    (_rx(r"(?<![A-Za-z0-9+])(?P<cc>\+?86[-\s]?)?(?P<num>1[3-9]\d(?:[-\s]?\d{4}){2})(?!\d)"),
     _phone),
    (_rx(r"(?<![A-Za-z0-9+])(?P<cc>)(?P<num>[48]00[-\s]?\d{3}[-\s]?\d{4})(?!\d)"), _phone),
    (_rx(r"(?<![A-Za-z0-9+])(?P<cc>)(?P<num>(?:\(0\d{2,3}\)|0\d{2,3}-)\s?\d{7,8})(?!\d)"),
     _phone),
    (_rx(rf"(?<=(?:{_PHONE_WORDS})[：:是为]?\s?)(?P<cc>)(?P<num>\d[\d\s-]*\d)"), _phone),
    # codes: after a code word, letters + 6 digits or more, 12 digits or more, rooms
    (_rx(rf"(?<=(?:{_CODE_WORDS})[：:是为]?\s?)[A-Za-z]{{0,4}}\d[\dA-Za-z-]*"),
     lambda m: digits(m.group())),
    (_rx(r"(?<![A-Za-z0-9])[A-Z]{1,4}\d{6,}(?![\d.])"), lambda m: digits(m.group())),
    (_rx(r"(?<![\d.,])\d{12,}(?![\d.,])"), lambda m: digits(m.group())),
    (_rx(r"(?<![\d.])\d{3,4}(?=室|房间|房(?!子|屋|产|价|租|东|源))"), lambda m: digits(m.group())),
    # thousands separators
    (_rx(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,])"), lambda m: m.group().replace(",", "")),
    # currencies the grammar does not know, before or after the amount
    (_rx(r"(?P<cur>" + "|".join(regex.escape(c) for c in _CURRENCIES) + rf")\s?(?P<n>-?{_NUM})"
         r"(?P<mult>[万亿]?)"),
     lambda m: f"{m['n']}{m['mult']}{_CURRENCIES[m['cur']]}"),
    (_rx(rf"(?P<n>{_NUM})(?P<mult>[万亿]?)\s?(?P<code>" + "|".join(_CODES) + r")(?![A-Za-z])"),
     lambda m: f"{m['n']}{m['mult']}{_CODES[m['code']]}"),
    # -3% -> 负3% (the grammar says 百分之负三)
    (_rx(rf"(?<![A-Za-z0-9.])-(?={_NUM}%)"), "负"),
    # COVID-19: a hyphen after a letter is no minus
    (_rx(r"(?<=[A-Za-z])-(?=\d)"), " "),
    # versions v2.3.1 / 1.10.2: digits joined by 点
    (_rx(r"(?<![\d.])(?P<v>[vV]?)(?P<n>\d{1,3}(?:\.\d+){2,})(?![\d.])"),
     lambda m: m["v"] + "点".join(digits(p, yao=False) for p in m["n"].split("."))),
    # 7×24: multiplication between numbers
    (_rx(r"(?<=\d)\s*[×xX*]\s*(?=\d)"), "乘"),
    # 100+ -> 100多
    (_rx(r"(?<=\d)\+(?!\s*\d)"), "多"),
    # units after a number
    (_rx(r"(?<=\d)\s?(?P<u>" + "|".join(sorted(_UNITS, key=len, reverse=True))
         + r")(?![A-Za-z])"), lambda m: _UNITS[m["u"]]),
]

POST: list[Rule] = [
    (_rx(r"第两"), "第二"),
]

SYMBOLS = {"#": " ", "&": "和", "@": "艾特", "+": "加", "=": "等于", "<": "小于", ">": "大于",
           "≤": "小于等于", "≥": "大于等于", "≠": "不等于", "±": "正负", "÷": "除以",
           "×": "乘", "°": "度", "‰": "千分之"}


def apply(rules: list[Rule], text: str) -> str:
    for pattern, rep in rules:
        text = pattern.sub(rep, text)
    return text
