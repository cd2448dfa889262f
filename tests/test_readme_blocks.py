"""Every block of the README is what it says (issue 22, defect 8): each timerc snippet
parses and its sections pass their backend's checks, each YAML loads (and the grid plans,
the plot configuration resolves), each command line is accepted by the parser of its
command, Python parses and TOML loads; the quick-start grid runs for real. A block no rule
claims fails the test, so a new kind of block cannot slip through unread."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PROGRAMS = ("BXRun", "plotScan", "runCalibration", "timecal", "make", "conda", "ssh")
#: Blocks that show what a command prints (not something to type or write): their first words.
OUTPUTS = ("disk ", "tasks:", "BXRun:", "plotScan figures:", "delay scan:", "runCalibration: error:",
           "timecal_core/")


def readme_blocks() -> list[tuple[int, str, str]]:
    text = (REPO / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def kind(lang: str, body: str) -> str:
    first = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
    if lang == "yaml":
        return "yaml"
    if lang == "python":
        return "python"
    if lang == "toml":
        return "toml"
    if lang in ("", "ini") and re.match(r"^\[[A-Za-z_]+\]$", first):
        return "timerc"
    if first.startswith(OUTPUTS) or re.match(r"^\d\d:\d\d:\d\d ", first):
        return "output"
    words = first.lstrip("$ ").split()
    if words and words[0] in PROGRAMS:
        return "commands"
    return "unknown"


def test_every_block_is_claimed():
    unclaimed = [(line, body.splitlines()[0]) for line, lang, body in readme_blocks()
                 if kind(lang, body) == "unknown"]
    assert not unclaimed, f"README blocks no rule of this test reads: {unclaimed}"


def _timerc_blocks():
    return [(line, body) for line, lang, body in readme_blocks() if kind(lang, body) == "timerc"]


@pytest.mark.parametrize("line, body", _timerc_blocks(), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_timerc_snippets_parse_and_pass_their_checks(tmp_path, line, body):
    """Inline ``#`` comments (``workers = 4   # default: all cores``) are comments."""
    from timecal_core.ledger.failure_causes import retry_policy
    from timecal_core.config.timerc import load_timerc
    from timecal_core.driver.notify import Notifier
    from timecal_core.contract.plugins import get_registry

    path = tmp_path / "timerc"
    path.write_text(body)
    rc = load_timerc(path)
    assert rc.sections, f"README line {line}: no section"
    for section, settings in rc.sections.items():
        for key, value in settings.items():
            assert not re.search(r"\s#", value) or section == "cmssw", (line, section, key, value)
        if section == "local":
            assert get_registry().backend("local").item.check(settings, tmp_path) == (True, 4)
        elif section in ("slurm", "htcondor"):
            module = __import__(f"timecal_backend_{section}.settings", fromlist=["parse_settings"])
            parsed = module.parse_settings(settings, tmp_path)
            assert parsed.cluster_kwargs["cores"] == 1
        elif section == "retry":
            retry_policy(settings, 3, where=str(path))
        elif section == "notify":
            notifier = Notifier(settings, tmp_path, note=lambda _: None)
            assert notifier.mail == ["you@example.org"]
            assert notifier.command == ["/home/jdoe/bin/ping-me", "--channel", "timing"]
        elif section == "paths":
            assert settings["production"] == "<where productions go: heavy>"
        elif section == "cmssw":
            assert settings["init"].startswith("module load")
        elif section == "production":
            from timecal_core.contract.plugins import get_registry as registry

            assert settings["layout"] in registry().script("cbcsim").item.layouts
        elif section == "gateway":
            from timecal_backend_gateway.settings import parse_settings
            parsed = parse_settings(settings)
            assert parsed.address == "https://dask-gateway.example.org"
        else:
            pytest.fail(f"README line {line}: no check for [{section}]")


def test_yaml_blocks_load_and_mean_what_they_say(tmp_path):
    """The scan grid plans with cbcsim; the plot configuration (with its !include) gives
    plotScan's sources; the scenarios and Dask blocks load."""
    from timecal_analysis.plotscan import _load_config, sources_from_config
    from timecal_core.plan.grid import plan_grid
    from timecal_core.cms.harvested_layout import MODES
    from timecal_core.contract.plugins import get_registry
    from timecal_core.config.yamlfiles import load_yaml

    blocks = [(line, body) for line, lang, body in readme_blocks() if kind(lang, body) == "yaml"]
    checked = set()
    for line, body in blocks:
        first = body.splitlines()[0]
        if first.startswith("# scan.yml"):
            (tmp_path / "scan.yml").write_text(body)
            plan = plan_grid(get_registry().script("cbcsim").item, load_yaml(tmp_path / "scan.yml"),
                             tmp_path / "prod")
            assert len(plan.tasks) == 9
            checked.add("grid")
        elif first.startswith('"BXHistogram{mode}'):
            (tmp_path / "hists.yml").write_text(body)
        elif first.startswith("parameters:"):
            (tmp_path / "plot.yml").write_text(body)
        elif first.startswith("closure_threshold5800:"):
            (tmp_path / "scenarios.yml").write_text(body)
            assert set(load_yaml(tmp_path / "scenarios.yml")) == {"closure_threshold5800"}
            checked.add("scenarios")
        elif first.startswith("distributed:"):
            (tmp_path / "dask.yml").write_text(body)
            assert "distributed" in load_yaml(tmp_path / "dask.yml")
            checked.add("dask")
        elif first.startswith("jobqueue:"):
            worker_args = load_yaml_text(tmp_path, body)["jobqueue"]["htcondor"]["worker-extra-args"]
            assert worker_args[worker_args.index("--nanny-port") + 1] == "10000:10100"
            checked.add("jobqueue")
        else:
            pytest.fail(f"README line {line}: a YAML block this test does not know")
    config = _load_config(str(tmp_path / "plot.yml"), {})
    sources = sources_from_config(config, MODES, "plot.yml")
    assert len(sources.bx_hists) == 2 * len(MODES)  # the included hists.yml, both modes
    assert config["parameters"]["threshold"] == [4000, 5000, 6000]
    assert checked == {"grid", "scenarios", "dask", "jobqueue"}


def load_yaml_text(tmp_path, body):
    from timecal_core.config.yamlfiles import load_yaml

    (tmp_path / "block.yml").write_text(body)
    return load_yaml(tmp_path / "block.yml")


def test_python_and_toml_blocks_parse():
    """The plugin and notebook examples are Python, the entry-point example TOML."""
    seen = {"python": 0, "toml": 0}
    for line, lang, body in readme_blocks():
        if kind(lang, body) == "python":
            ast.parse(body, f"README.md:{line}")
        elif kind(lang, body) == "toml":
            assert "timecal" in tomllib.loads(body)["project"]["entry-points"]
        else:
            continue
        seen[kind(lang, body)] += 1
    assert seen["python"] >= 3 and seen["toml"] >= 1


def _command_lines():
    out = []
    for line, lang, body in readme_blocks():
        if kind(lang, body) != "commands":
            continue
        for text in body.splitlines():
            text = text.strip()
            if text.startswith("$ "):
                text = text[2:]
            words = text.split()
            if not words or words[0] not in PROGRAMS:
                continue  # an output line in a terminal example
            text = re.sub(r"\s+#.*$", "", text)  # a shell comment
            text = re.sub(r"\s*<\s*/dev/null", "", text)
            out.append((line, text))
    return out


@pytest.mark.parametrize("line, text", _command_lines(), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_command_lines_are_accepted_by_their_parsers(line, text):
    """Every option a README command line uses exists and takes what it is given."""
    argv = shlex.split(text)
    program, args = argv[0], argv[1:]
    if program == "BXRun":
        from timecal_core.cli.bxrun import build_parser
    elif program == "plotScan":
        from timecal_analysis.plotscan import build_parser
    elif program == "runCalibration":
        from timecal_analysis.runcalibration import build_parser
    elif program == "timecal":
        from timecal_core.cli.timecal import build_parser
    elif program == "make":
        targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
        assert set(args) <= set(targets), (line, text)
        return
    elif program == "conda":  # create from the repository's ENV.yml, then activate that name
        if args[0] == "env":
            assert (REPO / args[args.index("--file") + 1]).is_file()
        else:
            assert args == ["activate", "timing"]
        return
    else:  # ssh: not ours to run; its -L forwards to the loopback port the dashboard uses
        assert "-L" in args and "127.0.0.1" in text
        return
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"README line {line}: {text!r} is refused by {program} (exit {exc.code})")


def test_the_quick_start_grid_runs(tmp_path, env):
    """The README's grid and command, run as written (fewer synthetic hits per task, to keep
    the test short)."""
    (line, body), = [(ln, b) for ln, lang, b in readme_blocks() if b.startswith("# scan.yml")]
    (tmp_path / "scan.yml").write_text(body.replace("pt: 2", "pt: 2\nnhits: 300"))  # quick
    (cmd,) = [t for _, t in _command_lines() if "--yaml scan.yml --dask local" in t]
    argv = shlex.split(cmd)
    res = subprocess.run([str(BIN / argv[0]), *argv[1:], "--interval", "2"], env=env, cwd=tmp_path,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "production complete: 9 tasks done" in res.stdout


def test_the_calibration_quick_use_runs(tmp_path, env):
    """The README says how to make runCalibration's two files; its commands, run as written
    (from [paths] production, as its cd says; the report without plots, to be quick), give
    the delay the test was emulated at."""
    (block,) = [b for _, _, b in readme_blocks() if "-o templates" in b]
    lines = [ln.split("  #")[0].strip() for ln in block.splitlines() if ln.strip()]
    assert lines[2].startswith("cd ") and "[paths] production" in block
    prod_root = tmp_path / "prod"
    timerc = Path(env["TIMECAL_CONFIG"])
    timerc.write_text(timerc.read_text().replace("[paths]\n", f"[paths]\ncalibration = {tmp_path / 'cal'}\n"))
    for line in lines[:2] + lines[3:]:
        argv = shlex.split(line) + (["--no-plots"] if line.startswith("runCalibration") else [])
        if argv[0] == "runCalibration":  # the shell expands the unquoted glob
            argv = [a for arg in argv for a in (sorted(map(str, prod_root.glob(arg))) or [arg])]
        res = subprocess.run([str(BIN / argv[0]), *argv[1:]], env=env, cwd=prod_root if argv[0] ==
                             "runCalibration" else tmp_path, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (line, res.stdout + res.stderr)
    assert re.search(r"delay = 23\.\d\d \+\d\.\d\d -\d\.\d\d ns .*\(true 23\.45 ns\)", res.stdout), res.stdout
