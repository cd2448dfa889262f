"""Sphinx configuration of timecal's manual (``make docs``: strict, ``-W --keep-going -n``).

Markdown pages through MyST; the CLI reference from each command's ``build_parser()``
(sphinx-argparse); the hook specifications from ``timecal_core/contract/hookspecs.py``
(autodoc); the timerc, failure-cause and exit-code tables from the code's declarations
(``_ext/timerc_reference.py``). CONTRIBUTING.md says why these tools.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from timecal_core import __version__  # noqa: E402  (the docs describe the installed code)

project = "timecal"
author = "the timecal developers"
copyright = "the timecal developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
    "timerc_reference",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# MyST: Markdown with directives; ``[text](#anchor)`` and ``[text](page.md#anchor)`` resolve
# against heading slugs (to level 3) and labels, and a missing one is a warning (an error here).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Every cross-reference must resolve. Outside types (the standard library's, pluggy's) have
# no inventory here (the build fetches nothing), so they are the only ones let through.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:(class|obj|data)", r"(collections\.abc|typing|pathlib|dataclasses)\..*"),
    (r"py:(class|obj|data)", r"(Any|Callable|Iterable|Mapping|Path|Optional|Sequence)"),
    (r"py:(class|obj|data)", r"(pluggy|cmd2|numpy|np)\..*"),
    (r"py:(class|obj|data)", r"(str|int|float|bool|tuple|dict|list|type|None)"),
    (r"py:class", r"timecal_analysis\..*"),  # the analysis plugin's classes, named in docstrings
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# What a docstring points at without being documented here (a module's internals) passes;
# two documented attributes of one name (``type``) make an ambiguous bare reference.
nitpick_ignore_regex += [
    (r"py:mod", r"timecal_core\..*"),
    (r"py:(func|class|meth|data)", r"timecal_core\.(run|batch|driver|cli|views|ledger|plan|control|monitor)\..*"),
    (r"py:class", r"distributed\..*"),
]
suppress_warnings = ["ref.python"]

# Command lines are literal: no "--" turned into a dash, in prose or in generated help.
smartquotes = False
highlight_language = "text"  # the usage blocks sphinx-argparse writes

html_theme = "furo"
html_title = f"timecal {version}"
html_static_path = ["_static"]
html_css_files = ["tables.css"]
html_show_sourcelink = False
