"""One vocabulary across the commands (issue 24): the parser of every installed console
script of timecal and of its plugins (found through their distributions, so a plugin's new
command is walked too) is checked against ``timecal_core/cli/vocabulary.py``: a shared option
has the word's flags, dest, list form and help wording wherever it appears; an option two
commands use must be a word; every list is given one way; every command and subcommand
answers ``--version`` and ``-v``; the parser comes from a module-level ``build_parser()``
that does nothing on import. A planted parser shows each rule catching its drift. The old
spellings users have in scripts keep working, with one warning line."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import pytest

from timecal_core.cli import vocabulary
from timecal_core.cli.vocabulary import WORDS, ListAction, VersionAction

BIN = Path(sys.executable).parent
#: long options spelt as the seed's users type them (not kebab-case)
SEED_SPELLINGS = {"--HSFile", "--PUFile"}
KEBAB = re.compile(r"--[a-z][a-z0-9]*(-[a-z0-9]+)*")
BY_FLAG = {flag: word for word in WORDS.values() for flag in word.flags}


def console_scripts() -> dict[str, str]:
    """Console script -> ``module:function``, for timecal-core and every distribution that
    registers a timecal plugin."""
    found = {}
    for dist in metadata.distributions():
        eps = dist.entry_points
        if dist.metadata["Name"] != vocabulary.CORE_DISTRIBUTION and not any(ep.group == "timecal" for ep in eps):
            continue
        found.update({ep.name: ep.value for ep in eps if ep.group == "console_scripts"})
    return found


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: importlib.import_module(target.split(":")[0]).build_parser()
            for name, target in console_scripts().items()}


def walk(prog: str, parser: argparse.ArgumentParser):
    """(prog, parser) for a command and each of its subcommands."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(f"{prog} {name}", sub)


def _is_list(action: argparse.Action) -> bool:
    return action.nargs in ("+", "*") or isinstance(action, (argparse._AppendAction, argparse._ExtendAction))


def violations(commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Every way the commands' options break the vocabulary, one line each."""
    found: list[str] = []
    users: dict[str, set[str]] = defaultdict(set)  # long option -> top-level commands using it
    for top, parser in commands.items():
        for prog, p in walk(top, parser):
            options = [a for a in p._actions if a.option_strings]
            if not any(isinstance(a, VersionAction) and a.option_strings == ["--version"] for a in options):
                found.append(f"{prog}: no --version (vocabulary.add_standard)")
            if not any(a.option_strings == ["-v", "--verbose"] and a.dest == "verbose" and a.nargs == 0
                       for a in options):
                found.append(f"{prog}: no -v/--verbose (vocabulary.add_standard)")
            for action in options:
                flags = "/".join(action.option_strings)
                longs = [f for f in action.option_strings if f.startswith("--")]
                for flag in longs:
                    users[flag].add(top)
                    if flag not in SEED_SPELLINGS and not KEBAB.fullmatch(flag):
                        found.append(f"{prog} {flag}: long options are lower-case words joined by '-'")
                words = {BY_FLAG[f] for f in action.option_strings if f in BY_FLAG}
                for word in words:
                    where = f"{prog} {flags}"
                    if tuple(action.option_strings) != word.flags:
                        found.append(f"{where}: the word is {'/'.join(word.flags)}")
                    if action.dest != word.dest and not isinstance(action, VersionAction):
                        found.append(f"{where}: dest {action.dest!r}, the word's is {word.dest!r}")
                    if not (action.help or "").startswith(word.meaning):
                        found.append(f"{where}: help {action.help!r} does not start with the "
                                     f"word's meaning {word.meaning!r}")
                    if word.is_list != isinstance(action, ListAction):
                        found.append(f"{where}: {'a list' if word.is_list else 'not a list'} in the vocabulary")
                if not words and action.dest in {w.dest for w in WORDS.values()}:
                    found.append(f"{prog} {flags}: dest {action.dest!r} belongs to another word")
                if re.search(r"\bcomma(s|-separated)?\b", action.help or "", re.IGNORECASE):
                    found.append(f"{prog} {flags}: a list is given one way: values separated by "
                                 f"spaces, not commas")
                if _is_list(action) and not (isinstance(action, ListAction) and action.nargs == "+"):
                    found.append(f"{prog} {flags}: a list is given one way: vocabulary.add_list "
                                 f"(values separated by spaces, the option repeatable)")
    for flag, tops in sorted(users.items()):
        if len(tops) > 1 and flag not in BY_FLAG and flag not in ("--help",):
            found.append(f"{flag}: used by {', '.join(sorted(tops))} but not a word of the vocabulary")
    return found


# --------------------------------------------------------------------------- the real commands
def test_every_console_script_is_walked():
    """The walk is not vacuous: the four commands of this repository are among them."""
    scripts = console_scripts()
    assert {"BXRun", "timecal", "plotScan", "runCalibration"} <= set(scripts), scripts


def test_every_command_speaks_the_vocabulary():
    problems = violations(command_parsers())
    assert not problems, "the commands drift from timecal_core/cli/vocabulary.py:\n" + "\n".join(problems)


def test_the_shared_words_mean_one_thing_where_they_appear():
    """The rules above, seen from the user's side: the options this issue found disagreeing."""
    commands = command_parsers()

    def action(prog, flag):
        (found,) = [a for a in commands[prog]._actions if flag in a.option_strings]
        return found

    assert action("plotScan", "--mode").dest == action("runCalibration", "--mode").dest == "mode"
    assert action("runCalibration", "--mode").choices == ("Sampled", "Latched")
    assert action("plotScan", "--dask").dest == action("BXRun", "--dask").dest == "dask"
    for prog in ("BXRun", "plotScan", "runCalibration"):
        assert action(prog, "-o").help.startswith("where this command writes"), prog
        assert action(prog, "--yaml").help.startswith("this command's YAML file"), prog
        assert isinstance(action(prog, "--custom"), ListAction), prog


def test_the_rules_catch_drift():
    """A command that drifts, planted: each rule reports it."""
    good = argparse.ArgumentParser(prog="good")
    vocabulary.add_standard(good)
    vocabulary.add(good, "--dask", "runs the tasks")
    good.add_argument("--select", action=ListAction)
    bad = argparse.ArgumentParser(prog="bad")  # no --version, no -v
    bad.add_argument("--mode", help="'worker' or a backend")  # the old plotScan meaning
    bad.add_argument("-o", "--out-dir", dest="output", help="figures")  # -o spelt otherwise
    bad.add_argument("--formats", help="comma-separated")
    bad.add_argument("--method", action="append", help="repeat it")  # a list the other way
    bad.add_argument("--test", nargs="+", help="space-separated but not the one action")
    bad.add_argument("--dask", dest="backend", help="where to run")
    bad.add_argument("--select", nargs="+")  # shared with 'good' but not a word
    bad.add_argument("--no_plots", action="store_true")
    problems = "\n".join(violations({"good": good, "bad": bad}))
    for expected in ("bad: no --version", "bad: no -v/--verbose",
                     "bad --mode: help \"'worker' or a backend\" does not start with",
                     "bad -o/--out-dir: the word is -o/--output",
                     "bad --formats: a list is given one way: values separated by spaces, not commas",
                     "bad --method: a list is given one way",
                     "bad --test: a list is given one way",
                     "bad --dask: dest 'backend', the word's is 'dask'",
                     "--select: used by bad, good but not a word",
                     "bad --no_plots: long options are lower-case"):
        assert expected in problems, f"{expected!r} not reported:\n{problems}"
    assert "good" not in problems.replace("bad, good", "")


def test_build_parser_has_no_side_effects_on_import(tmp_path):
    """Each command module imports and builds its parser (twice, independently) without
    printing, writing a file or reading sys.argv: the docs generate the CLI reference from it."""
    home = tmp_path / "home"
    home.mkdir()
    code = ("import argparse, importlib, json, sys\n"
            "sys.argv = ['x', '--no-such-option']\n"
            f"targets = {json.dumps(console_scripts())}\n"
            "for name, target in targets.items():\n"
            "    module = importlib.import_module(target.split(':')[0])\n"
            "    first, second = module.build_parser(), module.build_parser()\n"
            "    assert isinstance(first, argparse.ArgumentParser) and first is not second, name\n"
            "    assert first.format_help() == second.format_help(), name\n")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_STATE_HOME": str(home / ".state"), "TIMECAL_CONFIG": str(tmp_path / "no-timerc")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"] and not any(home.iterdir())


@pytest.mark.parametrize("argv,distributions", [
    (["BXRun"], ["timecal-core"]),
    (["timecal"], ["timecal-core"]),
    (["timecal", "serve"], ["timecal-core"]),
    (["plotScan"], ["timecal-analysis", "timecal-core"]),
    (["runCalibration"], ["timecal-analysis", "timecal-core"]),
])
def test_version_names_the_command_and_its_distributions(argv, distributions):
    done = subprocess.run([str(BIN / argv[0]), *argv[1:], "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    expected = ", ".join(f"{d} {metadata.version(d)}" for d in distributions)
    assert done.stdout == f"{' '.join(argv)}: {expected}\n"


def test_v_on_a_subcommand_and_before_it():
    parser = importlib.import_module("timecal_core.cli.timecal").build_parser()
    assert parser.parse_args(["attach", "scan1", "-v"]).verbose is True
    assert parser.parse_args(["-v", "attach", "scan1"]).verbose is True  # not reset by the subcommand
    assert parser.parse_args(["attach", "scan1"]).verbose is False


# --------------------------------------------------------------------------- lists, old spellings
def test_a_list_is_space_separated_and_the_option_repeatable(capsys):
    from timecal_analysis.runcalibration import build_parser

    parser = build_parser()
    args = parser.parse_args(["--method", "Mean", "Binomial", "--method", "LinearInterpolation"])
    assert args.method == ["Mean", "Binomial", "LinearInterpolation"]
    assert parser.parse_args(["--custom", "a=1", "--custom", "b=2"]).custom == ["a=1", "b=2"]
    assert parser.parse_args([]).custom == []  # the default is never extended in place
    assert parser.parse_args([]).custom == []
    assert capsys.readouterr().err == ""


def test_a_comma_separated_list_still_works_with_one_warning(capsys):
    from timecal_analysis.plotscan import build_parser

    parser = build_parser()
    assert parser.parse_args(["-i", "p", "--formats", "png", "root"]).formats == ["png", "root"]
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["-i", "p", "--formats", "png,root"]).formats == ["png", "root"]
    err = capsys.readouterr().err
    assert err == ("plotScan: warning: --formats png,root (a comma-separated list) is deprecated: "
                   "separate the values with spaces: --formats png root\n")


def _plotscan(argv):
    from timecal_analysis.plotscan import build_parser, settle

    return settle(build_parser().parse_args(["-i", "p", *argv]))


def test_plotscan_mode_is_the_cbc_mode_and_the_old_backend_spelling_still_works(capsys):
    from timecal_core.contract.errors import UserError

    args = _plotscan(["--mode", "Latched"])
    assert args.custom == ["mode=Latched"] and args.dask is None
    assert _plotscan(["--mode", "Sampled", "--custom", "mode=Sampled"]).custom == ["mode=Sampled"]
    with pytest.raises(UserError, match="--mode Sampled and --custom mode=Latched disagree"):
        _plotscan(["--mode", "Sampled", "--custom", "mode=Latched"])
    assert capsys.readouterr().err == ""

    args = _plotscan(["--mode", "local"])  # the seed's: read the files on that backend
    assert args.dask == "local" and args.mode is None and args.custom == []
    assert capsys.readouterr().err == ("plotScan: warning: --mode local (where the files are read) is "
                                       "deprecated: use --dask local\n")
    args = _plotscan(["--mode", "worker"])
    assert args.dask is None and args.mode is None
    assert capsys.readouterr().err.count("\n") == 1
    args = _plotscan(["--mode", "local", "--dask", "slurm"])
    assert args.dask == "slurm"
    assert "--dask slurm reads the files too" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"--mode Both: give Sampled or Latched .*--dask \(installed: .*local"):
        _plotscan(["--mode", "Both"])


def test_runcalibration_takes_its_yaml_either_way():
    from timecal_analysis.runcalibration import build_parser, settle
    from timecal_core.contract.errors import UserError

    parser = build_parser()
    assert settle(parser.parse_args(["s.yml"])).yaml == "s.yml"
    assert settle(parser.parse_args(["--yaml", "s.yml"])).yaml == "s.yml"
    with pytest.raises(UserError, match="two scenarios files"):
        settle(parser.parse_args(["a.yml", "--yaml", "b.yml"]))


def test_the_seed_readme_commands_still_parse():
    """What the old timeCal scripts' README has users type, copied here as typed."""
    bxrun = importlib.import_module("timecal_core.cli.bxrun").build_parser()
    args = bxrun.parse_args("--script PUCalibration_cfg.py --run N=1 threshold=5000 pileup=200 "
                            "HSfile=hs.txt PUfile=pu.txt -o out".split())
    assert args.run == ["N=1", "threshold=5000", "pileup=200", "HSfile=hs.txt", "PUfile=pu.txt"]
    assert args.output == "out"
    args = bxrun.parse_args("--yaml my_config.yml --script PUCalibration_cfg.py --dask slurm "
                            "-o my_output_path --debug --HSFile a.txt --PUFile b.txt".split())
    assert (args.yaml, args.dask, args.output, args.debug, args.HSFile, args.PUFile) == \
        ("my_config.yml", "slurm", "my_output_path", True, "a.txt", "b.txt")
