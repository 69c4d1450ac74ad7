"""``fleet/wire.py``, the native protocol without the driver (``--source``'s queries):
against a real 18.16 server, every type it reads gives what ``clickhouse_driver`` gives
for the same statement; what it does not read goes to the driver (``client.Light``),
with the same rows; the server's refusals and an unreachable server are the same
``FleetError``s; and the hot ``--source`` commands run without importing the driver or
click."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ttsops.fleet.client import FleetError, Light, call, connect, unknown_table
from ttsops.fleet.url import parse_url

from .test_source_agreement import answer, in_process, norm

TYPED = """
SELECT number AS n, toString(number) AS s, toUInt8(number) AS u8, toInt16(-number) AS i16,
  toUInt32(number * 1000) AS u32, toInt64(-number * 100000000000) AS i64,
  toUInt64(number * 10000000000000) AS u64, toFloat32(number / 4) AS f32,
  number / 3 AS f64, toDate('2024-06-01') + number AS d,
  if(number % 3 = 0, NULL, toFloat64(number)) AS nf,
  if(number % 2 = 0, NULL, concat('x', toString(number))) AS ns,
  range(number % 4) AS arr, arrayMap(x -> toString(x), range(number % 3)) AS sarr,
  arrayMap(x -> range(x), range(number % 3)) AS nested,
  (toString(number), number * 2) AS tup, [(1, 'a'), (2, 'b')] AS tups,
  concat('é', arrayStringConcat(arrayMap(x -> 'ü', range(number * 40)))) AS long_s, '' AS empty
FROM system.numbers LIMIT 70
"""


@pytest.fixture
def both(ch_single):
    url = parse_url(f"clickhouse://127.0.0.1:{ch_single.tcp_port}/default")
    light, driver = connect(url, check=False, light=True), connect(url)
    assert isinstance(light, Light)
    try:
        yield light, driver
    finally:
        light.disconnect()
        driver.disconnect()


def test_the_types_read_as_the_driver_reads_them(both):
    light, driver = both
    got = call(light, TYPED)
    assert light.driver is None  # read by wire, not handed to the driver
    assert got == call(driver, TYPED)
    assert len(got) == 70
    # several blocks, streamed (a small max_block_size), and parameters
    sql = "SELECT number, toString(number) FROM system.numbers LIMIT %(n)s"
    rows = list(light.execute_iter(sql, {"n": 5000}, settings={"max_block_size": 512}))
    assert rows == [(i, str(i)) for i in range(5000)]
    params = {"s": "it's \\ 'q'", "t": ("a", "b'"), "l": [1, 2]}
    sql = "SELECT %(s)s, 'b\\'' IN %(t)s, has(%(l)s, 2)"
    assert call(light, sql, params) == call(driver, sql, params) == [("it's \\ 'q'", 1, 1)]
    assert light.driver is None


def test_what_wire_does_not_read_the_driver_answers(both):
    light, driver = both
    sql = "SELECT toDateTime('2024-06-01 10:00:00', 'UTC') AS t, toUInt8(1) AS x"
    got = call(light, sql)
    assert light.driver is not None  # DateTime: not read by wire
    assert got == call(driver, sql)
    assert call(light, "SELECT 2") == [(2,)]  # the rest by the driver too


def test_refusals_and_unreachable_servers_are_fleet_errors(both, ch_single):
    light, _driver = both
    with pytest.raises(FleetError) as e:
        call(light, "SELECT * FROM default.no_such_table")
    assert unknown_table(e.value) and "no_such_table" in str(e.value)
    with pytest.raises(FleetError) as e:
        call(light, "SELECT nosuchfunction(1)")
    assert not unknown_table(e.value) and "nosuchfunction" in str(e.value)
    assert call(light, "SELECT 1") == [(1,)]  # the connection goes on after a refusal
    far = connect(parse_url("clickhouse://127.0.0.1:1/x"), check=False, light=True)
    with pytest.raises(FleetError, match=r"cannot reach ClickHouse at 127\.0\.0\.1:1"):
        call(far, "SELECT 1")
    bad = connect(parse_url(f"clickhouse://nobody:pw@127.0.0.1:{ch_single.tcp_port}/x"),
                  check=False, light=True)
    with pytest.raises(FleetError, match="nobody"):
        call(bad, "SELECT 1")
    assert bad.driver is not None  # a refused hello: the driver asked again, and said it


def test_hot_source_commands_import_neither_the_driver_nor_click(ch_cluster, corpora):
    """``trace``/``patterns``/``window --source`` in a process of their own: the same
    answers as the files', and neither ``clickhouse_driver`` nor ``click`` imported."""
    from .conftest import some_ids

    d = str(corpora["sim"])
    url = f"clickhouse://127.0.0.1:{ch_cluster[0].tcp_port}/wire_sim?cluster=ttsops_test"
    p = in_process("logs", "ship", d, "--to", url, "--host", "sim", "--json")
    assert p.returncode == 0, p.stderr
    probe = ("import sys\nsys.argv = ['ttsops'] + sys.argv[1:]\n"
             "from ttsops.entry import main\n"
             "try:\n    code = main()\nexcept SystemExit as e:\n    code = e.code\n"
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('clickhouse_driver', 'click'))\n"
             "sys.stderr.write('IMPORTED ' + ','.join(bad) + '\\n')\n"
             "sys.exit(code or 0)\n")
    for args in (["trace", some_ids(corpora["sim"], 1)[0]],
                 ["patterns", "--where", "status=failed", "--by", "error_code"],
                 ["window", "--since", "2024-06-12 03:00", "--until", "2024-06-12 09:30"]):
        got = subprocess.run([sys.executable, "-c", probe, "logs", *args, "--source", url,
                              "--json"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TTSOPS_LOG_UTC": "true"})
        assert got.returncode in (0, 1), got.stderr
        assert got.stderr.endswith("IMPORTED \n"), (args, got.stderr)
        assert (got.returncode, norm(json.loads(got.stdout))) == answer([*args, "--dir", d]), \
            args


@pytest.mark.parametrize("line", [
    ["trace", "ts_1", "--source", "clickhouse://h/db"],
    ["trace", "--source=clickhouse://h/db?cluster=c", "ts_1", "ts_2", "--json"],
    ["patterns", "--source", "clickhouse://h/db", "--by", "error_code", "-w", "status=failed"],
    ["window", "--since", "2h", "--source", "clickhouse://h/db", "--csv"],
    ["window", "--source", ""],
    ["window", "--source", "--json"],
])
def test_quick_reads_source_as_click_does(line):
    """``--source`` on ``forensics.quick``'s click-free path: the values click gives."""
    from forensics.test_quick import click_params
    from ttsops.forensics import quick

    ours = quick.parse(line[0], line[1:])
    assert ours is not None, line
    ours.pop("stage_time", None)
    assert ours == click_params(line[0], line[1:]), line
