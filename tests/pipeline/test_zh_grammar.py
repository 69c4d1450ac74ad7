"""The Chinese TN grammar loaded alone (``zh_grammar``) reads as ``wetext.Normalizer`` does,
on the service texts' table and on generated text, and the serving path never imports
wetext itself (whose import loads all twenty of its graphs)."""

from __future__ import annotations

import subprocess
import sys
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.pipeline.normalize import zh_rules
from ttsops.pipeline.normalize.zh_grammar import ZhNormalizer, reorder

from .test_zh_norm import CASES


@cache
def ours() -> ZhNormalizer:
    return ZhNormalizer()


@cache
def theirs():  # type: ignore[no-untyped-def]
    from wetext import Normalizer

    return Normalizer(lang="zh", operator="tn")


def _inputs() -> list[str]:
    """The table's texts as written and as our rules hand them to the grammar."""
    out = []
    for src, _ in CASES:
        out += [src, zh_rules.apply(zh_rules.PRE, src)]
    return list(dict.fromkeys(out))


@pytest.mark.parametrize("text", _inputs())
def test_the_table_reads_as_wetext_reads_it(text):
    assert ours().normalize(text) == theirs().normalize(text)


_PIECES = st.sampled_from([
    *"0123456789", "12", "2024", "3.85", "1,234", "0.5", "-", "+", "%", "‰", "/", ":", ".",
    "年", "月", "日", "号", "点", "分", "秒", "元", "块", "米", "公里", "kg", "km", "℃", "°",
    "¥", "$", "€", "~", "第", "页", "价格", "时间", "电话", "A", "x", " ", "，", "。", "？",
    "你好", "早上", "下午", "约", "共", "个", "人", "(", ")", "\"", "\\", "{", "}",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=0, max_size=14).map("".join))
def test_generated_text_reads_as_wetext_reads_it(text):
    assert ours().normalize(text) == theirs().normalize(text)


def test_reorder_puts_fields_in_the_grammars_order_unless_told_to_preserve_it():
    assert reorder('date { day: "5" month: "3" year: "2024" }') == \
        'date { year: "2024" month: "3" day: "5" }'
    assert reorder('date { day: "5" year: "2024" preserve_order: "true" }') == \
        'date { day: "5" year: "2024" preserve_order: "true" }'
    # fields the order does not name follow it; tokens it does not know keep theirs
    assert reorder('money { currency: "元" sign: "负" value: "5" } char { name: "a" }') == \
        'money { value: "5" currency: "元" sign: "负" } char { name: "a" }'
    # an escaped quote inside a value survives (written as wetext writes it again)
    assert reorder(r'char { name: "\"" }') == r'char { name: "\\\"" }'


_VALUE = st.lists(st.sampled_from([*"0123456789", "年", "元", " ", ":", "{", "}", '\\"', "a"]),
                  max_size=6).map("".join)
_TOKEN = st.tuples(
    st.sampled_from(["date", "money", "time", "measure", "fraction", "char", "cardinal"]),
    st.lists(st.tuples(st.sampled_from(["year", "month", "day", "value", "currency", "hour",
                                        "minute", "noon", "numerator", "denominator",
                                        "preserve_order", "sign", "name"]),
                       st.one_of(_VALUE, st.just("true"))), max_size=5))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKEN, min_size=1, max_size=4))
def test_reorder_is_wetexts_on_tagger_shaped_text(tokens):
    from wetext.token_parser import TokenParser

    tagged = " ".join(name + " {" + "".join(f' {k}: "{v}"' for k, v in fields) + " }"
                      for name, fields in tokens)
    assert reorder(tagged) == TokenParser("zh", "tn").reorder(tagged)


def test_the_serving_path_does_not_import_wetext():
    code = ("import sys\nfrom ttsops.pipeline.normalize import warm, zh\nwarm(('zh', 'en'))\n"
            "assert zh.normalize_zh('3.85%') == '百分之三点八五', zh.normalize_zh('3.85%')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'wetext'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
