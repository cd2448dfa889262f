"""Reference tables generated from the code's own declarations, so that the pages cannot
drift from what the code accepts:

- ``timerc-reference``: every timerc section and key (``timecal_core.cli.timerc_sections``:
  the core's sections and each installed backend's), one section per ``[name]`` with the
  label ``timerc-NAME`` for links;
- ``failure-causes``: the causes of a failed attempt and their ``[retry]`` keys
  (``timecal_core.ledger.failure_causes``);
- ``exit-codes``: what each exit code means (``timecal_core.cli.command_errors.EXIT_CODES``);
- ``benchmark-goals``: each script of ``benchmarks/``, its command and what it measures
  against what (the first paragraph of its docstring).

Each directive writes reStructuredText and parses it in place (the help texts are rST).
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _cell(text: str) -> str:
    return " ".join(str(text).split()) or "\\ "


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in (header, *rows):
        lines.append(f"   * - {_cell(row[0])}")
        lines.extend(f"     - {_cell(cell)}" for cell in row[1:])
    return lines + [""]


def _type(setting) -> str:
    text = setting.type
    if setting.type == "integer" and setting.minimum is not None:
        text += f" >= {setting.minimum}"
    if setting.choices:
        text += ": " + ", ".join(f"``{c}``" for c in setting.choices)
    return text


def section_rst(section, distribution: str) -> list[str]:
    """The body of one section: its help, who declares it, and its keys."""
    lines = [section.help + f" Declared by ``{distribution}``.", ""]
    rows = [(f"``{s.key}``", _type(s), s.default or "(none)", s.help) for s in section.settings]
    return lines + _table(("key", "type", "default", "meaning"), rows, "18 14 18 50")


def reference_rst(sections) -> str:
    """All sections as one rST text (tests read it; the directive builds sections itself)."""
    out = []
    for section, distribution in sections:
        out += [f"[{section.name}]", ""] + section_rst(section, distribution)
    return "\n".join(out)


class _Generated(SphinxDirective):
    has_content = False

    def parse(self, lines: list[str], into: nodes.Element) -> nodes.Element:
        """Parse the generated reStructuredText into ``into``; on a MyST page (whose nested
        parse reads Markdown) through MyST's own ``eval-rst`` directive."""
        if type(self.state).__module__.startswith("myst_parser"):
            fence = "`" * 4
            lines = [fence + "{eval-rst}", *lines, fence]
        self.state.nested_parse(StringList(lines, source=f"<{self.name}>"), self.content_offset, into)
        return into


class TimercReference(_Generated):
    """One docutils section per timerc section, titled ``[name]``, labelled ``timerc-name``."""

    def run(self):
        from timecal_core.cli.timerc_sections import declared_sections
        from timecal_core.contract.timerc_keys import TYPES

        out = []
        types = [(f"``{t}``" if t != "yes/no" else "``yes/no``", what) for t, what in TYPES.items()]
        out.append(self.parse(["Types:", ""] + _table(("type", "what it takes"), types, "20 80"), nodes.container()))
        for section, distribution in declared_sections():
            label = f"timerc-{section.name}"
            node = nodes.section(ids=[label], names=[label])
            node += nodes.title(text=f"[{section.name}]")
            self.state.document.note_explicit_target(node)
            self.parse(section_rst(section, distribution), node)
            out.append(node)
        return out


class FailureCauses(_Generated):
    def run(self):
        from timecal_core.ledger.failure_causes import KINDS, RETRY, USER

        rows = []
        for kind, what in KINDS.items():
            shown = f"``{kind} N``" if kind in ("exit", "signal") else f"``{kind}``"
            retry = "never" if kind == USER else f"``[retry] {kind}``, default {RETRY.default(kind)}"
            rows.append((shown, what, retry))
        return [self.parse(_table(("cause", "what happened", "attempts"), rows, "15 55 30"), nodes.container())]


class ExitCodes(_Generated):
    def run(self):
        from timecal_core.cli.command_errors import EXIT_CODES

        rows = [(f"``{code}``", what) for code, what in EXIT_CODES.items()]
        return [self.parse(_table(("exit code", "meaning"), rows, "15 85"), nodes.container())]


class BenchmarkGoals(_Generated):
    def run(self):
        import ast
        from pathlib import Path

        root = Path(self.env.srcdir).parent / "benchmarks"
        lines = []
        for path in sorted(root.glob("bench_*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            first = doc.split("\n\n")[0]
            lines += [f"``{path.name}``", "   " + " ".join(first.split()), ""]
        return [self.parse(lines, nodes.container())]


def setup(app):
    app.add_directive("timerc-reference", TimercReference)
    app.add_directive("failure-causes", FailureCauses)
    app.add_directive("exit-codes", ExitCodes)
    app.add_directive("benchmark-goals", BenchmarkGoals)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
