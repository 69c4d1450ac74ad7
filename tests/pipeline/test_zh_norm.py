"""Chinese text normalisation: the table of service texts (input -> reading), and
properties of the normaliser on any text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.pipeline import text as T
from ttsops.pipeline.normalize import zh, zh_rules

DATA = Path(__file__).parent / "data" / "zh_norm_cases.tsv"


def _cases() -> list[tuple[str, str]]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        src, expected = line.split("\t")
        out.append((src, expected))
    return out


CASES = _cases()


def test_the_table_is_large_enough_and_has_no_duplicates():
    assert len(CASES) >= 100
    assert len({src for src, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("src,expected", CASES, ids=[c[0] for c in CASES])
def test_reading(src, expected):
    # as the pipeline does it: cleaning (NFKC) first, then the Chinese reading
    got = T.read_numbers_zh(T.clean(src).text)
    assert got == unicodedata.normalize("NFKC", expected)


def test_digits_reads_one_as_yao_only_when_asked():
    assert zh_rules.digits("110") == "幺幺零"
    assert zh_rules.digits("110", yao=False) == "一一零"
    assert zh_rules.digits("400-820 (8820)") == "四零零八二零八八二零"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789.,-:/%¥$年月日号第元 个人天abcAB"
                                             "今天价格电话订单号：，。+×~")), max_size=40))
def test_any_text_of_digits_and_signs_is_read_without_failing_and_without_digits_left(s):
    got = zh.normalize_zh(T.clean(s).text if s.strip() else s)
    assert isinstance(got, str)
    # every Arabic digit has been turned into words
    assert not any(ch.isdigit() for ch in got), got


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs", "Nd", "S")), max_size=60))
def test_text_without_digits_or_symbols_is_left_alone(s):
    s = T.clean(s).text
    if any(ch.isdigit() or unicodedata.category(ch)[0] == "S" for ch in s):
        return  # NFKC made digits or symbols (¼ -> 1⁄4)
    # the grammar is not asked: only our rules and the symbol names apply
    rules = zh_rules.apply(zh_rules.POST, zh_rules.apply(zh_rules.PRE, s))
    assert zh.normalize_zh(s) == zh.read_symbols(rules)
