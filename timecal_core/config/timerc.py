"""The global configuration file ``timerc`` (INI), as the seed tool defined it.

Looked up in ``$TIMECAL_CONFIG``, else ``$XDG_CONFIG_HOME/timerc``, else
``~/.config/timerc``. ``[paths]`` holds the data locations (cmssw, production, scans,
calibration), ``[cmssw] init`` the trusted shell snippet that sets up CMSSW, and each
backend reads its own section (``[local]``, ``[slurm]``, ``[htcondor]``).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection

PATHS = SettingsSection("paths", (
    Setting("cmssw", "path", help="the directory holding the CMSSW cfg files "
            "(``src/SimTracker/SiPhase2TimingCalibration/test`` of your CMSSW area)"),
    Setting("production", "path", help="where productions go: a relative ``BXRun -o`` lands here "
            "(BX histogram files can be heavy)"),
    Setting("scans", "path", help="where plotScan writes observables and plots (relative ``-o``)"),
    Setting("calibration", "path", help="where runCalibration writes evaluators and results "
            "(relative ``-o``)"),
), help="Where the data go. Each command that needs a path and finds it unset says which key to add.")
CMSSW = SettingsSection("cmssw", (
    Setting("init", "shell", help="run in bash before every ``cmsRun``, the command appended with "
            "every argument quoted; e.g. ``module load cms/cmssw && eval `scramv1 runtime -sh```"),
), help="How a CMSSW production gets its ``cmsRun``. Parameter values never reach this shell.")


def timerc_location() -> Path:
    if os.environ.get("TIMECAL_CONFIG"):
        return Path(os.environ["TIMECAL_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "timerc"


@dataclass
class Timerc:
    path: Path
    sections: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def cmssw_init(self) -> str:
        return CMSSW.check(self.sections.get("cmssw", {}), str(self.path)).get("init", "")

    def _path_text(self, key: str) -> str:
        PATHS.setting(key)  # a key the code asks for is declared
        return PATHS.check(self.sections.get("paths", {}), str(self.path)).get(key, "")

    def section(self, name: str) -> dict[str, str]:
        return dict(self.sections.get(name, {}))

    def data_path(self, key: str) -> Path:
        """A ``[paths]`` entry, created if absent on disk; UserError if not configured."""
        value = self._path_text(key)
        if not value:
            raise UserError(f"{self.path}: [paths] {key} is not set; add e.g. "
                            f"'{key} = /data/timecal/{key}' under [paths]")
        p = Path(os.path.expandvars(value)).expanduser()
        return p

    def optional_path(self, key: str) -> Path | None:
        value = self._path_text(key)
        return Path(os.path.expandvars(value)).expanduser() if value else None


def check_output_dir(path: Path, option: str = "-o") -> Path:
    """An output directory a command will write, checked before it does any work: a file
    there, or a parent that is not a directory or not writable, is a one-line error naming
    it (not a crash after an hour of computing). Returns ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a directory; give a directory (new or "
                        "existing)")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {parent} (permission denied); give an "
                        f"{option} you can write to")
    return path


def positive_int_setting(section: str, settings: dict[str, str], key: str) -> int | None:
    """A backend setting that must be a positive integer; None when absent or empty."""
    value = settings.get(key, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UserError(f"timerc [{section}] {key} = {value!r}: expected a positive integer")
    return number


def size_setting_or_range(section: str, settings: dict[str, str], key: str) -> tuple[int | None, tuple[int, int] | None]:
    """How big a cluster a backend section asks for: a fixed ``key`` (jobs, workers; default
    1) or an adaptive range ``adapt_min``/``adapt_max``, not both. Returns (fixed, range),
    one of them None."""
    fixed = positive_int_setting(section, settings, key)
    low, high = positive_int_setting(section, settings, "adapt_min"), positive_int_setting(section, settings, "adapt_max")
    if low is None and high is None:
        return (1 if fixed is None else fixed), None
    if fixed is not None:
        raise UserError(f"timerc [{section}]: give either {key} or adapt_min/adapt_max, not both")
    span = (low or 1, high or low or 1)
    if span[0] > span[1]:
        raise UserError(f"timerc [{section}] adapt_min = {span[0]} exceeds adapt_max = {span[1]}")
    return None, span


def setting_lines(value: str) -> list[str]:
    """A multi-line setting (INI continuation lines) as its non-empty lines."""
    return [line.strip() for line in value.splitlines() if line.strip()]


#: Settings that are shell code: bash reads its own ``#`` comments there, and ``;`` separates
#: commands, so they are left whole ([cmssw] init) or lose ``#`` comments only (prologue:
#: its lines are joined with ';' for HTCondor, where a comment would swallow the rest).
SHELL_SETTINGS = {"init": "", "prologue": "#"}
COMMENT_PREFIXES = "#;"


def without_comment(line: str, prefixes: str = COMMENT_PREFIXES) -> str:
    """``line`` without an inline comment: a ``#`` or ``;`` at its start or after a space,
    outside quotes (``workers = 4   # default: all cores`` is ``4``; ``mail = a@b.org`` and
    ``+JobFlavour = "a #1"`` keep theirs)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in prefixes and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def _uncommented(key: str, value: str) -> str:
    prefixes = SHELL_SETTINGS.get(key, COMMENT_PREFIXES)
    if not prefixes:
        return value
    return "\n".join(without_comment(line, prefixes) for line in value.split("\n")).strip("\n")


def load_timerc(path: Path | None = None) -> Timerc:
    """Read timerc; a missing or malformed file is a UserError saying how to fix it. Comments
    may follow a value on its line (``workers = 4   # default: all cores``), as the manual's
    and ``BXRun --init``'s examples write them."""
    path = path or timerc_location()
    if not path.is_file():
        raise UserError(
            f"no timerc found at {path} (looked at $TIMECAL_CONFIG, then $XDG_CONFIG_HOME/timerc, "
            f"then ~/.config/timerc); create one with 'BXRun --init [DATA_DIR]'")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        msg = str(exc).replace("\n", " ")
        raise UserError(f"{path}: not a valid timerc: {msg}") from None
    return Timerc(path, {s: {k: _uncommented(k, v) for k, v in parser.items(s)} for s in parser.sections()})


TEMPLATE = """\
# timecal global configuration (~/.config/timerc, as the timeCal scripts read it), written by
# BXRun --init. A comment may follow a value on its line: workers = 4   # all cores if absent
# TIMECAL_CONFIG=/some/file overrides where this file is looked up.

[paths]
# Directory holding the CMSSW cfg files (SiPhase2TimingCalibration/test of your CMSSW area)
cmssw       = {cmssw}
# Where productions go (relative -o paths land here); BX histogram files can be heavy
production  = {data}/production
# Where plotScan writes observables and plots
scans       = {data}/scans
# Where runCalibration writes evaluators and results
calibration = {data}/calibration

[cmssw]
# Trusted shell snippet run (in bash) before every cmsRun, e.g. at CP3 (Louvain):
#   init = module load cms/cmssw && eval `scramv1 runtime -sh`
init =

[local]
# Dask LocalCluster on this machine: workers (default: all cores), memory per worker
# workers = 4
# memory_limit = 2GB

# [slurm], [htcondor], [gateway]: every key in docs/reference/timerc.md.

[retry]
# Attempts per task by failure cause (default: BXRun --max-retries, 3); user errors are
# never retried. same_exit: identical 'exit N' failures in a row that stop retrying (0: off).
# oom = 2
# walltime = 1
# node = 5
# same_exit = 2
"""


def write_default_timerc(target: Path, data_dir: Path) -> Path:
    """Write a commented timerc pointing at ``data_dir``; never overwrite an existing one."""
    if target.exists():
        raise UserError(f"{target} already exists; edit it, or set TIMECAL_CONFIG to write elsewhere")
    data_dir = data_dir.expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE.format(data=data_dir, cmssw=data_dir / "cmssw"), encoding="utf-8")
    for key in ("production", "scans", "calibration"):
        (data_dir / key).mkdir(parents=True, exist_ok=True)
    return target
