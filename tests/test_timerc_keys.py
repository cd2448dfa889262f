"""timerc declared once: every section the code reads is checked against its declaration (an
unknown key or a value of the wrong type is one line naming the section, the key and what is
allowed, with the close match when there is one), BXRun checks the whole file before it
plans, and what the documentation lists is what the declarations hold."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_bxrun
from timecal_core.cli.timerc_sections import CORE_SECTIONS, check_timerc, declared_sections
from timecal_core.config.timerc import TEMPLATE, load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.contract.plugins import get_registry
from timecal_core.contract.timerc_keys import TYPES, Setting, SettingsSection, check_sections

REPO = Path(__file__).resolve().parents[1]

SECTION = SettingsSection(
    "demo",
    (
        Setting("workers", "integer", minimum=1),
        Setting("memory", "size", choices=("auto",)),
        Setting("dashboard", "yes/no"),
        Setting("tls", "choice", choices=("no", "ssl")),
        Setting("note", "text"),
    ),
)


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"wrokers": "2"},
            "timerc [demo]: unknown setting wrokers (did you mean workers?); allowed: "
            "workers, memory, dashboard, tls, note",
        ),
        ({"colour": "red"}, "timerc [demo]: unknown setting colour; allowed: workers"),
        (
            {"wrokers": "2", "memroy": "1GB"},
            "unknown settings wrokers (did you mean workers?), memroy (did you mean memory?); allowed",
        ),
        ({"workers": "0"}, "timerc [demo] workers = '0': expected a positive integer"),
        ({"workers": "two"}, "timerc [demo] workers = 'two': expected a positive integer"),
        ({"memory": "lots"}, "timerc [demo] memory = 'lots': expected a size such as 2GB or 1500MB, or auto"),
        ({"dashboard": "maybe"}, "timerc [demo] dashboard = 'maybe': expected yes or no"),
        ({"tls": "starttls"}, "timerc [demo] tls = 'starttls': expected one of no, ssl"),
    ],
)
def test_a_bad_key_or_value_is_one_line_naming_it(values, message):
    with pytest.raises(UserError) as err:
        SECTION.check(values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_good_values_pass_stripped():
    assert SECTION.check({"workers": " 4 ", "memory": "auto", "dashboard": "No", "tls": "ssl", "note": None}) == {
        "workers": "4",
        "memory": "auto",
        "dashboard": "No",
        "tls": "ssl",
        "note": "",
    }


def test_declarations_refuse_their_own_mistakes():
    with pytest.raises(ValueError, match="type 'number'"):
        Setting("x", "number")
    with pytest.raises(ValueError, match="declared twice: x"):
        SettingsSection("s", (Setting("x"), Setting("x")))


def test_a_misspelled_section_is_caught_another_is_left_to_its_plugin():
    with pytest.raises(UserError, match=r"unknown section \[slurn\] \(did you mean \[slurm\]\?\)"):
        check_sections({"slurn": {}}, [SettingsSection("slurm", ()), SettingsSection("local", ())])
    check_sections({"mysite": {"x": "1"}}, [SettingsSection("slurm", ())])


def test_every_section_is_declared_once_and_documented():
    """The core's four, and one per backend of this repository, each key with a help text
    and a type the reference knows."""
    sections = declared_sections(get_registry())
    names = [s.name for s, _ in sections]
    assert len(names) == len(set(names))
    assert {"paths", "cmssw", "retry", "notify", "local", "slurm", "htcondor"} <= set(names)
    assert [s for s, _ in sections[: len(CORE_SECTIONS)]] == list(CORE_SECTIONS)
    for section, distribution in sections:
        assert section.help and distribution
        for setting in section.settings:
            assert setting.help and setting.type in TYPES, (section.name, setting.key)


def test_every_backend_of_the_repository_declares_its_section():
    registry = get_registry()
    for name in ("local", "slurm", "htcondor"):
        assert registry.backend(name).item.settings.name == name


def test_the_backends_read_their_sections_through_the_declaration(tmp_path):
    """The declaration is not a copy beside the code: the readers refuse what it refuses."""
    from timecal_backend_htcondor.settings import parse_settings as htcondor
    from timecal_backend_slurm.settings import parse_settings as slurm
    from timecal_core.driver.notify import Notifier
    from timecal_core.ledger.failure_causes import retry_policy

    for read, section in (
        (lambda v: slurm(v, tmp_path), "slurm"),
        (lambda v: htcondor(v, tmp_path), "htcondor"),
        (lambda v: Notifier(v, tmp_path, note=print), "notify"),
        (lambda v: retry_policy(v), "retry"),
    ):
        with pytest.raises(UserError, match=rf"\[{section}\]: unknown setting bogus"):
            read({"bogus": "1"})
    rc = tmp_path / "timerc"
    rc.write_text("[paths]\nproducton = /x\n[cmssw]\ninti = x\n")
    with pytest.raises(UserError, match=r"\[paths\]: unknown setting producton \(did you mean production\?\)"):
        load_timerc(rc).optional_path("production")
    with pytest.raises(UserError, match=r"\[cmssw\]: unknown setting inti \(did you mean init\?\)"):
        _ = load_timerc(rc).cmssw_init  # the property reads the section


def test_defaults_the_code_uses_come_from_the_declaration(tmp_path):
    from timecal_backend_slurm.settings import SETTINGS, parse_settings
    from timecal_core.driver.notify import NOTIFY, Notifier

    parsed = parse_settings({}, tmp_path)
    assert parsed.connect_timeout == int(SETTINGS.default("connect_timeout")) == 120
    assert parsed.max_replacements == int(SETTINGS.default("max_replacements"))
    assert parsed.cluster_kwargs["job_name"] == SETTINGS.default("job_name")
    notifier = Notifier({"mail": "a@b.org"}, tmp_path, note=print)
    assert (notifier.host, notifier.tls) == (NOTIFY.default("smtp_host"), NOTIFY.default("smtp_tls"))


def test_init_writes_a_timerc_the_declarations_accept(tmp_path):
    rc = tmp_path / "timerc"
    rc.write_text(TEMPLATE.format(data=tmp_path, cmssw=tmp_path / "cmssw"))
    check_timerc(load_timerc(rc))


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "wrokers = 2\n",
            "[local]: unknown setting wrokers (did you mean workers?); allowed: workers, memory_limit, dashboard",
        ),
        ("[slurn]\npartition = x\n", "unknown section [slurn] (did you mean [slurm]?)"),
        (
            "[notify]\nmail = a@b.org\nsmtp_port = twentyfive\n",
            "[notify] smtp_port = 'twentyfive': expected a positive integer",
        ),
    ],
)
def test_bxrun_refuses_a_bad_timerc_before_anything_is_written(tmp_path, env, text, message):
    """As a user meets it: one line, exit 2, no production directory, on a --dask local grid
    whatever section the mistake is in (the test's timerc ends in its [local] section)."""
    rc = Path(env["TIMECAL_CONFIG"])
    rc.write_text(rc.read_text() + text)
    (tmp_path / "scan.yml").write_text("threshold: [5000, 6000]\n")
    res = run_bxrun("--script", "cbcsim", "--yaml", str(tmp_path / "scan.yml"), "-o", "scan1", env=env, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"BXRun: error: {rc}") and message in line
    assert not (tmp_path / "prod" / "scan1").exists()


def test_the_reference_page_extension_lists_every_declared_key():
    """docs/_ext/timerc_reference.py renders the declarations: every key of every section
    appears in its text (the rendered page is checked by the strict docs build). `make test`
    installs the docs extra; `make test-lowest` does not (its venv holds the floors of the
    runtime and test requirements only), so there it is skipped, saying so."""
    pytest.importorskip("docutils", reason="the docs extra is not installed (make test-lowest)")
    sys.path.insert(0, str(REPO / "docs" / "_ext"))
    try:
        from timerc_reference import reference_rst
    finally:
        sys.path.pop(0)
    text = reference_rst(declared_sections(get_registry()))
    for section, _ in declared_sections(get_registry()):
        assert f"[{section.name}]" in text
        for setting in section.settings:
            assert f"``{setting.key}``" in text, (section.name, setting.key)


def test_declared_sections_without_plugins_loaded_is_cheap():
    """BXRun --status and attach do not pay for the check: only a production imports it."""
    code = "import sys, timecal_core.cli.bxrun; print('timecal_core.cli.timerc_sections' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
