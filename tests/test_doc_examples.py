"""Examples that cannot rot: every fenced block of README.md, CONTRIBUTING.md, the plugins'
READMEs and docs/ is read by a rule here
or marked illustrative, and a block that breaks its rule fails the test with its file and line.

The blocks are found by sybil (its Markdown lexers: fenced blocks, and directives in HTML
comments); the rules are ours, one per language (CONTRIBUTING.md, "Examples"):

- ``console`` (``$ `` lines are commands, the others their output), ``shell``/``bash``/``sh``
  (every line a command): each timecal command line is parsed by its command's real
  ``build_parser()`` (every option it names must exist and take what it is given); ``make``
  targets must exist in the Makefile; other programs must be ones we know.
- ``yaml``: loaded with timecal's own loader (``!include`` and all); ``ini``: a timerc,
  parsed and checked against the declaration of every section (an unknown section fails),
  then read by the code that reads it (the backend's settings parser, the retry policy, the
  notifier): an inline ``# comment`` must be a comment, not part of a value.
- a command whose input is a file of the page (``<!-- example: file scan.yml -->``) is
  checked with it: ``BXRun --script S --yaml F`` plans F's grid for S (nothing is written),
  ``plotScan --yaml F`` resolves F's plot configuration into the files it would read.
- ``python`` compiles, ``toml`` loads; ``text`` (output, trees) is not read.
- a block without a language, or of a language no rule reads, fails.

A marker, an HTML comment on the line right before the fence, changes what happens:
``<!-- example: illustrative ... -->`` (not read; say why), ``<!-- example: file NAME -->``
(the block is also written as NAME in the page's working directory before its examples run)
and ``<!-- example: run -->`` (a console block whose commands are run, in order with the page's
other runnable blocks, in a temporary HOME with a timerc of its own; each must exit 0, and
each output line shown must match a line of the real output in order, digits and ``...``
matching anything).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
from sybil import Document, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer
from test_cli_vocabulary import console_scripts

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    *sorted(REPO.glob("plugins/*/README.md")),
    *sorted(p for p in (REPO / "docs").rglob("*.md") if "_build" not in p.parts),
]
COMMANDS = ("console", "shell", "bash", "sh")
#: Programs a command block may name besides timecal's commands and make (not run unless
#: the block is runnable; nothing about them is checked).
OTHER_PROGRAMS = {
    "cd",
    "ls",
    "cat",
    "cp",
    "mkdir",
    "export",
    "source",
    "module",
    "ssh",
    "conda",
    "pip",
    "python",
    "python3",
    "git",
    "tmux",
    "screen",
    "nohup",
    "chmod",
    "open",
    "xdg-open",
    "squeue",
    "sbatch",
    "scancel",
    "scontrol",
    "condor_q",
    "condor_rm",
    "condor_release",
    "condor_submit",
    "cmsRun",
    "scram",
    "scramv1",
    "cmsenv",
    "kill",
    "head",
    "tail",
    "less",
    "watch",
    "find",
    "sqlite3",
    "du",
    "df",
    "echo",
    "duplicates",
}
MARKERS = ("illustrative", "file", "run")


@dataclass
class Block:
    info: str  # the fence's info string
    source: str
    marker: str  # the words after "example:" in the comment before the fence, or ""

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.strip() else ""


# ---------------------------------------------------------------- finding the blocks (sybil)
FENCES = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<info>[^\n]*)\n"))
MARKS = DirectiveInHTMLCommentLexer(directive="example", arguments=".+?")


def parse_page(path: Path) -> Document:
    """The page's blocks as sybil regions, each with its marker; a marker followed by no
    block is a failing region of its own."""
    document = Document(path.read_text(encoding="utf-8"), str(path))
    marks = {document.text.index(">", m.end) + 1: m for m in MARKS(document)}  # where "-->" ends
    used = set()
    for fence in FENCES(document):
        info = fence.lexemes["info"].strip()
        if info.startswith("{"):  # a MyST directive (toctree, argparse...): not an example
            continue
        before = document.text[: fence.start].rstrip(" \t")  # the fence's line starts here
        mark = marks.get(len(before) - 1) if before.endswith("\n") else None
        if mark is not None:
            used.add(len(before) - 1)
        marker = " ".join(mark.lexemes["arguments"].split()) if mark is not None else ""
        block = Block(info, str(fence.lexemes["source"]), marker)
        document.add(Region(fence.start, fence.end, block, evaluate))
    for end, mark in marks.items():
        if end not in used:
            document.add(
                Region(
                    mark.start,
                    mark.end,
                    mark.lexemes["arguments"],
                    lambda ex: f"marker 'example: {ex.parsed}' is not right before a fenced block",
                )
            )
    return document


# ---------------------------------------------------------------- the rules
def evaluate(example) -> str | None:
    """The block's rule; a string says what is wrong."""
    block: Block = example.parsed
    action = block.marker.split(" ", 1)[0].rstrip(":") if block.marker else ""
    if action and action not in MARKERS:
        return f"unknown marker 'example: {block.marker}'; markers: " + ", ".join(MARKERS)
    if action == "illustrative":
        return None
    language = block.language
    if language in COMMANDS:
        return check_commands(block, example.namespace, run=action == "run")
    if action == "run":
        return f"'example: run' goes with a console block, not {language or 'no language'}"
    if language == "yaml":
        return check_yaml(block, example.namespace)
    if language == "ini":
        return check_timerc(block, example.namespace)
    if language == "python":
        compile(block.source, f"{example.path}:{example.line}", "exec")
        return None
    if language == "toml":
        tomllib.loads(block.source)
        return None
    if language == "text":
        return None
    if not language:
        return (
            "a block without a language: give it one (console, shell, yaml, ini, python, toml, "
            "text) or mark it <!-- example: illustrative (why) -->"
        )
    return f"no rule reads a {language!r} block: use one of the languages above or mark it illustrative"


def _scratch(namespace: dict, block: Block) -> Path:
    """Where the block is written: its file name under the page's directory, or a scratch file."""
    if block.marker.startswith("file "):
        return namespace["work"] / block.marker.split()[1]
    namespace["n"] = namespace.get("n", 0) + 1
    return namespace["work"] / f".block{namespace['n']}"


def check_yaml(block: Block, namespace: dict) -> str | None:
    from timecal_core.config.yamlfiles import load_yaml
    from timecal_core.contract.errors import UserError

    path = _scratch(namespace, block)
    path.write_text(block.source)
    # {placeholders} stay as written (plotScan's {mode}, a --custom key): the page shows a
    # template; its syntax and its !include files are what is checked here.
    texts = [block.source, *namespace.get("files", {}).values()]
    kept = {name: "{" + name + "}" for text in texts for name in re.findall(r"\{(\w+)\}", text)}
    try:
        load_yaml(path, kept)
    except UserError as exc:
        return f"does not load with timecal's YAML loader: {exc}"
    return None


def check_timerc(block: Block, namespace: dict) -> str | None:
    from timecal_core.cli.timerc_sections import declared_sections
    from timecal_core.config.timerc import load_timerc
    from timecal_core.contract.errors import UserError

    path = _scratch(namespace, block)
    path.write_text(block.source)
    declared = {s.name: s for s, _ in declared_sections()}
    try:
        rc = load_timerc(path)
        if not rc.sections:
            return "no [section] in this timerc block"
        for name, values in rc.sections.items():
            if name not in declared:
                return f"[{name}] is no declared timerc section; sections: " + ", ".join(declared)
            declared[name].check(values, where="timerc")
            problem = read_section(name, values, path)
            if problem:
                return problem
    except UserError as exc:
        return str(exc)
    return None


def read_section(name: str, values: dict, path: Path) -> str | None:
    """The section read by what reads it in a production (the declaration alone does not
    see an inline comment swallowed into a free-text value)."""
    from timecal_core.contract.plugins import get_registry
    from timecal_core.driver.notify import Notifier
    from timecal_core.ledger.failure_causes import retry_policy
    from timecal_core.run.cluster_security import without_dashboard

    for key, value in values.items():
        if re.search(r"\s#", value) and name != "cmssw":  # [cmssw] init is shell: # is its own
            return f"[{name}] {key} = {value!r}: the inline comment was read as part of the value"
    if name == "retry":
        retry_policy(values, 3, where=str(path))
    elif name == "notify":  # the files it names are the reader's machine's: stand-ins, 0600
        files = {k: path.parent / f".{k}" for k in ("smtp_password_file", "smtp_cafile") if k in values}
        for file in files.values():
            file.write_text("x")
            file.chmod(0o600)
        Notifier({**values, **{k: str(f) for k, f in files.items()}}, path.parent, note=lambda _: None)
    elif name == "local":
        get_registry().backend("local").item.check(values, path.parent)
    elif name in ("slurm", "htcondor"):  # the parser, not check(): that also wants sbatch/condor_q here
        module = importlib.import_module(f"timecal_backend_{name}.settings")
        module.parse_settings(without_dashboard(values), path.parent)
    elif name == "gateway":
        importlib.import_module("timecal_backend_gateway.settings").parse_settings(values)
    elif name == "production":  # a layout the emulator writes
        layouts = get_registry().script("cbcsim").item.layouts
        if values.get("layout") and values["layout"] not in layouts:
            return f"[production] layout = {values['layout']}: cbcsim writes {', '.join(layouts)}"
    return None


def command_lines(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) in the order of the block."""
    out: list[tuple[str, list[str]]] = []
    pending = ""
    for raw in block.source.splitlines():
        line = raw.rstrip()
        if block.language == "console":
            if pending:
                line = pending + line.lstrip()
            elif not line.startswith("$ "):
                if out and line:
                    out[-1][1].append(line)
                continue
            else:
                line = line[2:]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        else:
            line = pending + line.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        out.append((line, []))
    return out


def simple_commands(line: str) -> list[list[str]]:
    """A shell line as its simple commands (pipes, ``&&``, ``;`` split; redirections and
    variable assignments dropped), as the shell would split their words."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, words, skip = [], [], False
    for token in lexer:
        if skip:
            skip = False
        elif token in ("|", "||", "&&", ";", "&"):
            commands.append(words)
            words = []
        elif token in ("<", ">", ">>", "&>", ">&"):
            skip = True
            if token.startswith(">") and words and words[-1] in ("1", "2"):
                words.pop()  # 2> err.txt: the descriptor went with the word before
        elif not words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
            continue
        else:
            words.append(token)
    return [c for c in commands + [words] if c]


@contextlib.contextmanager
def _parser_of(program: str):
    """The command's real parser, taking options only as spelled in full (a page that uses an
    abbreviation would break when another option starting the same way is added)."""
    target = console_scripts()[program]
    parser = importlib.import_module(target.split(":")[0]).build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        p.allow_abbrev = False
        for action in p._actions:  # argparse has no public walk of its subparsers
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    yield parser


def check_command(words: list[str], namespace: dict | None = None) -> str | None:
    program, args = words[0], words[1:]
    scripts = console_scripts()
    if program in scripts:
        with _parser_of(program) as parser:
            if program == "BXRun":
                parser.given_argv = args  # --script NAME --help shows the script's table
            err, out = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                    parsed = parser.parse_args(args)
            except SystemExit as exc:
                if exc.code:
                    said = (err.getvalue().strip().splitlines() or ["(nothing)"])[-1]  # after the usage
                    return f"{shlex.join(words)!r}: {program} refuses it: {said}"
                return None
        return check_with_page_files(program, parsed, namespace or {}, shlex.join(words))
    if program == "make":
        targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
        unknown = [a for a in args if not a.startswith("-") and "=" not in a and a not in targets]
        return f"make: no target {', '.join(unknown)} in the Makefile" if unknown else None
    if program == "conda" and args[:2] == ["env", "create"] and "--file" in args:
        name = args[args.index("--file") + 1]
        return None if (REPO / name).is_file() else f"conda: no {name} in the repository"
    if program == "ssh" and "-L" in args:  # a tunnel to a dashboard: it listens on loopback only
        forward = args[args.index("-L") + 1]
        return None if "127.0.0.1" in forward else f"ssh -L {forward}: the dashboard listens on 127.0.0.1"
    if program in OTHER_PROGRAMS or program.startswith(("./", "/", "~")):
        return None
    return (
        f"{program!r} is neither a timecal command ({', '.join(sorted(scripts))}) nor a program "
        f"this test knows: add it to OTHER_PROGRAMS or mark the block illustrative"
    )


def check_with_page_files(program: str, args: argparse.Namespace, namespace: dict, line: str) -> str | None:
    """A BXRun grid or a plotScan configuration that is a file of the page, used as the
    command uses it (nothing is run or written)."""
    from timecal_core.contract.errors import UserError

    name = getattr(args, "yaml", None)
    if not name or name not in namespace.get("files", {}):
        return None
    path = namespace["work"] / name
    from timecal_core.config.yamlfiles import parse_custom

    custom = parse_custom(getattr(args, "custom", None) or [])
    try:
        if program == "BXRun" and args.script:
            from timecal_core.config.yamlfiles import load_yaml
            from timecal_core.contract.plugins import get_registry
            from timecal_core.plan.grid import plan_grid

            plan_grid(
                get_registry().script(args.script).item,
                load_yaml(path, custom),
                namespace["work"] / ".planned",
                source=name,
                base=namespace["work"],
            )
        elif program == "plotScan":
            from timecal_analysis.plotscan import _load_config, sources_from_config
            from timecal_core.cms.harvested_layout import MODES

            sources = sources_from_config(_load_config(str(path), custom), MODES, name)
            if not sources.bx_hists:
                return f"{line!r}: {name} names no BX histogram"
    except UserError as exc:
        return f"{line!r}: {exc}"
    return None


def check_commands(block: Block, namespace: dict, run: bool) -> str | None:
    problems = []
    for line, shown in command_lines(block):
        for words in simple_commands(line):
            problem = check_command(words, namespace)
            if problem:
                problems.append(problem)
        if run and not problems:
            problem = run_command(line, shown, namespace)
            if problem:
                return problem  # what follows depends on it
    return "\n".join(problems) or None


def run_command(line: str, shown: list[str], namespace: dict) -> str | None:
    cwd = namespace.get("cwd", namespace["work"])
    words = simple_commands(line)
    if len(words) == 1 and words[0][0] == "cd":  # as in a terminal: the next commands run there
        target = words[0][1]
        namespace["cwd"] = namespace["home"] / target[2:] if target.startswith("~/") else cwd / target
        return None if namespace["cwd"].is_dir() else f"$ {line}\nno such directory"
    res = subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=namespace["env"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    output = res.stdout.replace(str(namespace["home"]), "~")
    if res.returncode != 0:
        return f"$ {line}\nexited {res.returncode}:\n{output[-3000:]}"
    return output_mismatch(shown, output, line)


def _shown_pattern(line: str) -> re.Pattern:
    parts = [re.sub(r"\d+", r"\\d+", re.sub(r"(\\ )+", r"\\s+", re.escape(p))) for p in line.split("...")]
    return re.compile(".*".join(parts))


def output_mismatch(shown: list[str], output: str, line: str) -> str | None:
    """Each shown line (stripped) must match a line of the output, in order."""
    actual = [a.strip() for a in output.splitlines()]
    i = 0
    for want in (s.strip() for s in shown if s.strip()):
        pattern = _shown_pattern(want)
        while i < len(actual) and not pattern.fullmatch(actual[i]):
            i += 1
        if i == len(actual):
            return f"$ {line}\nthe page shows {want!r}; no such line (in order) in its output:\n{output[-3000:]}"
        i += 1
    return None


# ---------------------------------------------------------------- the tests
def page_environment(tmp_path: Path) -> dict:
    """A temporary HOME (its own ~/.config/timerc, written by the page's own commands),
    the installed commands first on PATH, figures without a display."""
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMECAL_", "XDG_")) and k not in ("DASK_CONFIG",)}
    env.update(
        HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        MPLBACKEND="Agg",
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PYTHONUNBUFFERED="1",
    )
    return {"home": home, "work": work, "env": env}


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _pages():
    """Every page; those with runnable blocks (the tutorial: minutes of real productions) slow."""
    return [pytest.param(p, marks=pytest.mark.slow) if "<!-- example: run -->" in p.read_text() else p for p in PAGES]


def prepared_page(page: Path, tmp_path: Path) -> Document:
    """The page's blocks, in a fresh environment holding the page's files (written first: a
    block may !include or use a file shown later)."""
    document = parse_page(page)
    document.namespace.update(page_environment(tmp_path))
    for example in document:
        if isinstance(example.parsed, Block) and example.parsed.marker.startswith("file "):
            path = _scratch(document.namespace, example.parsed)
            path.write_text(example.parsed.source)
            document.namespace.setdefault("files", {})[path.name] = example.parsed.source
    return document


@pytest.mark.parametrize("page", _pages(), ids=_id)
def test_every_block_of_the_page_is_read_or_marked(page, tmp_path):
    """Every block's rule, in the page's order; the page's runnable blocks run (docs/tutorial.md:
    from an empty HOME to a calibrated delay). All failures are reported, each with its line."""
    document = prepared_page(page, tmp_path)
    failures = []
    for example in document:
        try:
            example.evaluate()
        except AssertionError as exc:  # sybil's SybilFailure names the file, line and column
            failures.append(str(exc))
            if isinstance(example.parsed, Block) and example.parsed.marker.startswith("run"):
                break  # the next runnable blocks build on this one
        except Exception as exc:  # a YAML/TOML/Python syntax error: the block's, not the test's
            failures.append(f"{_id(page)}:{example.line}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_tutorial_runs_from_zero_to_a_calibrated_delay():
    """The tutorial is the page with runnable blocks: production, plotScan, runCalibration,
    in that order (the page test runs them)."""
    tutorial = parse_page(REPO / "docs" / "tutorial.md")
    runs = [e.parsed.source for e in tutorial if isinstance(e.parsed, Block) and e.parsed.marker == "run"]
    text = "\n".join(runs)
    order = [text.find(word) for word in ("BXRun --init", "BXRun --script cbcsim --yaml", "plotScan", "runCalibration")]
    assert -1 not in order and order == sorted(order), order


def test_the_rules_catch_a_block_that_rotted(tmp_path):
    """Planted mistakes, one per rule, each reported at its line; good blocks pass."""
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ BXRun --script cbcsim --yaml scan.yml --dask local -o scan1\n```\n\n"  # 1 good
        "```shell\nplotScan -i scan1 --observable efficiency\n```\n\n"  # 5: renamed option
        "```yaml\nthreshold: [5000\n```\n\n"  # 9: broken YAML
        "```ini\n[local]\nwrokers = 2\n```\n\n"  # 13: misspelled key
        "```ini\n[slurn]\njobs = 2\n```\n\n"  # 18: unknown section
        "```\nplain\n```\n\n"  # 23: no language
        "<!-- example: illustrative (a sketch) -->\n```\nanything\n```\n\n"  # 27-28: marked
        "```shell\nmake nosuchtarget\nrm -rf /\n```\n\n"  # 32: bad target, unknown program
        "<!-- example: file x.yml -->\n\nsome text\n\n```text\nfine\n```\n"  # 37: marker not before
    )
    results = evaluate_all(page, tmp_path)
    assert results[0] is None and results[6] is None
    assert "unrecognized arguments: --observable" in results[1]
    assert "does not load" in results[2]
    assert "unknown setting wrokers (did you mean workers?)" in results[3]
    assert "[slurn] is no declared timerc section" in results[4]
    assert "without a language" in results[5]
    assert "no target nosuchtarget" in results[7] and "'rm' is neither" in results[7]
    assert "is not right before a fenced block" in results[8] and results[9] is None
    assert [
        f"page.md, line {n}," in (r or f"page.md, line {n},")
        for n, r in zip((1, 5, 9, 13, 18, 23, 28, 32, 37), results)
    ] == [True] * 9


def evaluate_all(page: Path, tmp_path: Path) -> list[str | None]:
    """What each example of a page says, in order (None: it passed)."""
    document = prepared_page(page, tmp_path)
    results = []
    for example in document:
        try:
            example.evaluate()
            results.append(None)
        except AssertionError as exc:
            results.append(str(exc))
        except Exception as exc:
            results.append(f"{type(exc).__name__}: {exc}")
    return results


def test_a_runnable_block_that_fails_or_prints_otherwise_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- example: run -->\n```console\n$ BXRun --version\nBXRun: timecal-core ...\n```\n\n"
        "<!-- example: run -->\n```console\n$ BXRun --version\nBXRun: timecal-kore ...\n```\n\n"
        "<!-- example: run -->\n```console\n$ BXRun --status -o nowhere\n```\n"
    )
    outcome = evaluate_all(page, tmp_path)
    assert outcome[0] is None
    assert "the page shows 'BXRun: timecal-kore ...'" in outcome[1]
    assert "exited 2" in outcome[2] and "timerc" in outcome[2]


def test_shown_output_matches_loosely():
    assert (
        output_mismatch(
            ["done in 2.7 s", "delay = 23.40 +0.08 -0.08 ns ..."],
            "x\nBXRun: done in 12.25 s\ndelay = 23.48 +0.11 -0.09 ns (true 23.45 ns)\n",
            "c",
        )
        is not None
    )  # the first line is not the whole line
    assert (
        output_mismatch(
            ["...done in 2.7 s", "delay = 23.40 +0.08 -0.08 ns ..."],
            "x\nBXRun: done in 12.25 s\ndelay = 23.48 +0.11 -0.09 ns (true 23.45 ns)\n",
            "c",
        )
        is None
    )
    assert output_mismatch(["b", "a"], "a\nb\n", "c") is not None  # order counts


def test_simple_commands_split_like_a_shell():
    assert simple_commands("FOO=1 BXRun --status -o x | head -3 && plotScan -i x < /dev/null  # note") == [
        ["BXRun", "--status", "-o", "x"],
        ["head", "-3"],
        ["plotScan", "-i", "x"],
    ]
    assert simple_commands("runCalibration --test 'a b/*.root' 2> err.txt") == [
        ["runCalibration", "--test", "a b/*.root"]
    ]


def test_every_command_parser_is_found():
    assert {"BXRun", "timecal", "plotScan", "runCalibration"} <= set(console_scripts())
    assert isinstance(importlib.import_module("timecal_core.cli.bxrun").build_parser(), argparse.ArgumentParser)


def _blocks(page: str, language: str) -> list[str]:
    return [
        e.parsed.source
        for e in parse_page(REPO / page)
        if isinstance(e.parsed, Block) and e.parsed.language == language
    ]


def test_what_some_blocks_say_is_what_the_code_does():
    """Beyond their rule: the lxplus jobqueue block opens the nanny ports the page says, the
    plugin guide's entry point is timecal's group."""
    import yaml

    (jobqueue,) = [b for b in _blocks("docs/howto/htcondor.md", "yaml") if b.startswith("jobqueue:")]
    worker_args = yaml.safe_load(jobqueue)["jobqueue"]["htcondor"]["worker-extra-args"]
    assert worker_args[worker_args.index("--nanny-port") + 1] == "10000:10100"
    (entry_points,) = _blocks("docs/howto/plugins.md", "toml")
    assert "timecal" in tomllib.loads(entry_points)["project"]["entry-points"]


def test_a_command_is_checked_with_the_page_files_it_reads(tmp_path):
    """A grid that does not plan, a plot configuration that resolves to nothing, a timerc
    value its backend refuses: each fails at its block."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- example: file scan.yml -->\n```yaml\nthreshold: [5000, 6000]\nnhits: 300\n```\n\n"
        "<!-- example: file bad.yml -->\n```yaml\nthreshhold: [5000, 6000]\n```\n\n"
        "<!-- example: file plot.yml -->\n```yaml\nhists: {}\n```\n\n"
        "```console\n$ BXRun --script cbcsim --yaml scan.yml -o scan1\n```\n\n"
        "```console\n$ BXRun --script cbcsim --yaml bad.yml -o scan1\n```\n\n"
        "```console\n$ plotScan -i scan1 --yaml plot.yml\n```\n\n"
        "```ini\n[slurm]\nmemory = lots\n```\n"
    )
    results = evaluate_all(page, tmp_path)
    assert results[:4] == [None] * 4, results
    assert "threshhold" in results[4]
    assert "plot.yml" in results[5]
    assert "memory" in results[6]


def test_the_readme_quick_start_is_what_the_tutorial_runs():
    """The README's three commands and its grid are the tutorial's, word for word, so the
    tutorial's run (production, plots) is the quick start's run: a change to either that is
    not made to both fails here."""
    readme = [e.parsed for e in parse_page(REPO / "README.md") if isinstance(e.parsed, Block)]
    tutorial = [e.parsed for e in parse_page(REPO / "docs" / "tutorial.md") if isinstance(e.parsed, Block)]
    (grid,) = [b.source for b in readme if b.marker == "file scan.yml"]
    assert grid in [b.source for b in tutorial if b.marker == "file scan.yml"]
    (quick,) = [b for b in readme if b.language == "console" and "scan.yml" in b.source]
    ran = [line for b in tutorial if b.marker == "run" for line, _ in command_lines(b)]
    commands = [line for line, _ in command_lines(quick)]
    assert len(commands) == 3 and all(c in ran for c in commands), (commands, ran)


def test_every_link_of_the_readme_and_contributing_leads_somewhere():
    """The site's build checks its own links; these pages are outside it."""
    for page in (REPO / "README.md", REPO / "CONTRIBUTING.md", *REPO.glob("plugins/*/README.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name}: link to {target}: no such file"
