"""Selection by parameter, the grid map and ``errors by``, as pure functions over a real
ledger filled through its public API (fast: no cluster). The same features driven in a real
terminal are in tests/test_monitor_map.py."""

import re
from types import SimpleNamespace

import pytest

from timecal_core.views.failure_groups import failure_groups, render_ranking, task_facts
from timecal_core.views.heatmap import CELL_STATES, SHADES, cell_glyph, render_grid
from timecal_core.contract.hookspecs import Parameter
from timecal_core.ledger.records import Completion, Failure
from timecal_core.ledger.sqlite_ledger import Ledger
from timecal_core.views.selection import ParameterSpace, SelectionError
from timecal_core.views.ledger_report import ledger_space, render_ledger_grid, render_ledger_report

PARAMS = (Parameter("threshold", "int", 5000), Parameter("delay", "float", 0.0, unit="ns"),
          Parameter("subdet", "str", "EHH"), Parameter("pileup", "int", 0))
THRESHOLDS = [3000 + 500 * i for i in range(30)]
DELAYS = [0.25 * i for i in range(30)]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def spec(params):
    tid = "t" + "_".join(str(v) for v in params.values()).replace(".", "p")
    return SimpleNamespace(task_id=tid, dirname=tid, params=params)


@pytest.fixture
def small_space():
    specs = [spec({"threshold": t, "delay": d, "subdet": s, "pileup": 0})
             for t in (3000, 5000, 8000, 12000) for d in (0.0, 2.5, 3.5) for s in ("EHH", "PS")]
    return ParameterSpace.build({s.task_id: s.params for s in specs}, PARAMS), specs


def planted_ledger(tmp_path):
    """30 x 30 thresholds x delays, two pile-ups: pile-up 400 with threshold >= 12000 fails
    (for good), threshold 3000 still pending, threshold 3500 running, the rest done."""
    specs = [spec({"threshold": t, "delay": d, "subdet": "EHH", "pileup": pu})
             for t in THRESHOLDS for d in DELAYS for pu in (0, 400)]
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(specs, set())
    started = [s for s in specs if s.params["threshold"] > 3000]
    ledger.mark_running([(s.task_id, "tcp://w:1", 100.0) for s in started])
    failing = [s for s in started if s.params["pileup"] == 400 and s.params["threshold"] >= 12000]
    done = [s for s in started if s not in failing and s.params["threshold"] != 3500]
    ledger.record_outcomes([Completion(s.task_id, "tcp://w:1", 100.0, 110.0 + s.params["threshold"] / 1000,
                                       resources={"maxrss_kib": 1000 + s.params["pileup"], "host": "n1"})
                            for s in done], [], 1)
    ledger.record_outcomes([], [Failure(s.task_id, "tcp://w:1", "sleep", -9, "step sleep killed by signal 9 "
                                        "(SIGKILL)", "killed", cause="oom") for s in failing], 1)
    return ledger, specs, failing


# ---------------------------------------------------------------------- the parser
def test_terms_select_by_typed_values(small_space):
    space, specs = small_space
    ids = [s.task_id for s in specs]

    def chosen(*words):
        return {tuple(space.params[t].values())[:3] for t in space.select(list(words), ids)}

    assert chosen("threshold>=8000", "subdet=EHH") == {(8000, d, "EHH") for d in (0.0, 2.5, 3.5)} | \
        {(12000, d, "EHH") for d in (0.0, 2.5, 3.5)}
    assert chosen("delay!=3.5", "threshold<5000", "subdet=PS") == {(3000, 0.0, "PS"), (3000, 2.5, "PS")}
    # a comma is "any of"; 2.50 and 2.5 are the same float, 8e3 the same int
    assert chosen("threshold=3000,8e3", "delay=2.50", "subdet==PS") == {(3000, 2.5, "PS"), (8000, 2.5, "PS")}
    assert chosen("threshold>5000", "threshold<=8000", "delay=0", "subdet=EHH") == {(8000, 0.0, "EHH")}
    # task ids (and unique prefixes) mix with terms: the named tasks are added
    one = specs[0].task_id
    assert space.select([one[:-1], "threshold=12000", "delay=0", "subdet=PS"], ids) == \
        [one] + [s.task_id for s in specs if s.params["threshold"] == 12000 and
                 s.params["delay"] == 0.0 and s.params["subdet"] == "PS"]


@pytest.mark.parametrize("word, message", [
    ("thresh>=8000", r"'thresh' is not a parameter of this production; parameters: threshold, delay, subdet"),
    ("threshold=7000", r"no task has threshold=7000; threshold takes 3000, 5000, 8000, 12000"),
    ("threshold>=eight", r"threshold expects an integer, got 'eight'"),
    ("threshold=3000.5", r"threshold expects an integer, got '3000.5'"),
    ("subdet>PS", r"> needs a numeric parameter; subdet is str: use = or != with EHH, PS"),
    ("delay<1,2", r"< takes one value"),
    ("delay=", r"no value after =; delay takes 0, 2.5, 3.5"),
    ("=5", r"not a selection term; write NAME OP VALUE"),
])
def test_bad_terms_are_one_line_errors_naming_what_is_allowed(small_space, word, message):
    space, specs = small_space
    with pytest.raises(SelectionError, match=message) as info:
        space.select([word], [s.task_id for s in specs])
    assert "\n" not in str(info.value) and word in str(info.value)


def test_an_unknown_task_id_is_refused(small_space):
    space, specs = small_space
    with pytest.raises(SelectionError, match="nope: no task with this id"):
        space.select(["nope"], [s.task_id for s in specs])


def test_completion_offers_names_then_values(small_space):
    space, _ = small_space
    # the parameters that vary first
    assert space.complete("") == (["threshold=", "delay=", "subdet=", "pileup="], False)
    assert space.complete("thr") == (["threshold="], False)
    assert space.complete("threshold>=") == (["threshold>=3000", "threshold>=5000", "threshold>=8000",
                                               "threshold>=12000"], True)
    assert space.complete("delay=0,3") == (["delay=0,3.5"], True)
    assert space.complete("subdet!=P") == (["subdet!=PS"], True)


# ---------------------------------------------------------------------- the map
def test_cell_precedence():
    assert cell_glyph({"done": 5, "error": 1, "failed": 1, "running": 1}) == "X"
    assert cell_glyph({"done": 5, "failed": 1, "running": 1}) == "!"
    assert cell_glyph({"done": 5, "pending": 1}, failed_before=1) == "!"
    assert cell_glyph({"done": 5, "running": 1}) == ">"
    assert cell_glyph({"done": 5}) == "#"
    assert cell_glyph({"done": 5, "pending": 2, "cancelled": 1}) == "+"
    assert cell_glyph({"pending": 2, "cancelled": 1}) == "."
    assert cell_glyph({"cancelled": 2}) == "c"
    assert [g for g, _, _ in CELL_STATES] == ["X", "!", ">", "#", "+", ".", "c"]


def test_a_30x30_map_fits_80_columns_and_shows_the_failing_region(tmp_path):
    ledger, specs, failing = planted_ledger(tmp_path)
    space = ParameterSpace.build({s.task_id: s.params for s in specs}, PARAMS)
    text = render_grid(space, task_facts(ledger, use="states"), "threshold", "delay", colour=True)
    plain = ANSI.sub("", text)
    assert max(map(len, plain.splitlines())) <= 80
    rows = {line.split("|")[0].strip(): line.split("|", 1)[1][1:] for line in plain.splitlines()
            if re.match(r"^\s*[\d.]+ \| ", line)}
    assert len(rows) == 30
    for cells in rows.values():
        glyphs = cells[::2].ljust(30)
        # threshold 3000 pending, 3500 running, then done, from 12000 (column 18) failed
        assert glyphs == "." + ">" + "#" * 16 + "X" * 12, glyphs
    assert "\x1b[1;31mX" in text  # failed-for-good cells in red when colour is on
    assert "X some failed for good (360 cells)" in plain and "legend" in plain
    # the column labels are written vertically: 3000 reads down its column
    lines = plain.splitlines()
    first_cell = next(line for line in lines if " | " in line).index("|") + 2
    assert "".join(line[first_cell] for line in lines[1:6]).strip() == "3000"
    # a selection narrows the map: only pile-up 0 shows no failure at all
    narrowed = ANSI.sub("", render_grid(space, task_facts(ledger, use="states"), "threshold", "delay",
                                        selection=space.parse(["pileup=0"])))
    assert "X some failed for good (0 cells)" in narrowed and "selection pileup=0" in narrowed


def test_a_metric_map_has_a_scale(tmp_path):
    ledger, specs, _ = planted_ledger(tmp_path)
    space = ParameterSpace.build({s.task_id: s.params for s in specs}, PARAMS)
    text = render_grid(space, task_facts(ledger, use="runtime"), "threshold", "pileup",
                       metric="runtime", width=80)
    lines = text.splitlines()
    row0 = next(line for line in lines if line.strip().startswith("0 |")).split("|", 1)[1]
    # runtime grows with the threshold: the shades climb the ramp left to right
    shades = [SHADES.index(c) for c in row0.split()]
    assert shades == sorted(shades) and shades[0] == 0 and shades[-1] == len(SHADES) - 1
    assert "legend runtime (min 1" in text and "@ >=" in text
    failed = render_grid(space, task_facts(ledger, use="failed"), "threshold", "pileup", metric="failed")
    row400 = next(line for line in failed.splitlines() if line.strip().startswith("400 |"))
    assert row400.split("|", 1)[1].split()[-12:] == ["@"] * 12
    with pytest.raises(SelectionError, match="--metric wall: unknown; metrics: rss, runtime, cpu, failed"):
        render_grid(space, [], "threshold", "pileup", metric="wall")


def test_long_labels_get_keys_listed_below(tmp_path):
    names = [f"configuration-{i:02d}" for i in range(12)]
    params = {f"t{i}{j}": {"config": n, "index": j} for i, n in enumerate(names) for j in range(3)}
    space = ParameterSpace.build(params)
    rows = [(t, "done", None) for t in params]
    text = render_grid(space, rows, "config", "index", width=60)
    assert "config:  0=configuration-00  1=configuration-01" in text
    assert max(map(len, text.splitlines())) <= 60


# ---------------------------------------------------------------------- failures
def test_errors_by_names_the_region_and_groups_share_its_values(tmp_path):
    ledger, specs, failing = planted_ledger(tmp_path)
    space = ParameterSpace.build({s.task_id: s.params for s in specs}, PARAMS)
    text = render_ranking(task_facts(ledger, failures_only=True, use="failures"), space,
                          excluded=ledger.not_run())
    assert "all 360 oom failures have threshold >= 12000 and pileup = 400" in text
    # compared with the 1680 tasks that ran (not the 60 pending, nor the 60 running): the
    # 12 failing thresholds have 720 of them (score 1 - 720/1680), pile-up 400 half (0.5)
    assert "360 of 1680 tasks that ran failed" in text
    ranked = [line.split()[:2] for line in text.splitlines()[6:9]]
    assert ranked == [["threshold", "0.57"], ["pileup", "0.50"], ["delay", "0.00"]]
    assert "400: 360/840 43%" in text
    (group,) = failure_groups(task_facts(ledger, failures_only=True, use="failures"), space)
    assert group.count == 360 and group.shared == {"pileup": 400}


def test_status_report_and_status_grid_read_the_ledger_alone(tmp_path):
    ledger, specs, failing = planted_ledger(tmp_path)
    report = render_ledger_report(ledger, tmp_path)
    assert "all 360 have pileup=400" in report
    assert re.search(r"all 360 oom failures have threshold >= 12000 and pileup = 400", report)
    space = ledger_space(ledger)
    assert space.axes["delay"].type == "float" and len(space.axes["threshold"].values) == 30
    grid = render_ledger_grid(ledger, "threshold", "delay", select=["pileup=400"])
    assert "X some failed for good (360 cells)" in grid and "\x1b[" not in grid
    with pytest.raises(SelectionError, match="'thr': not a parameter of this production; parameters: "
                                             "delay, pileup, subdet, threshold"):
        render_ledger_grid(ledger, "thr", "delay")


def test_the_status_page_draws_the_map_of_the_first_two_varying_parameters(tmp_path):
    from timecal_core.views.status_html import render

    ledger, specs, failing = planted_ledger(tmp_path)
    page = render(ledger, tmp_path, {"counts": ledger.counts()}, 60)
    grid = re.search(r"<pre id='gridmap'>(.*?)</pre>", page, re.S).group(1)
    assert "grid delay (across) x pileup (down)" in grid  # ledger order: delay, pileup, ...
    row400 = next(line for line in grid.splitlines() if line.strip().startswith("400 |"))
    assert "<span style='color:#d63a3a'>X</span>" in row400  # some pile-up 400 tasks failed
