"""timerc: where it is looked up, what a missing one says, --init, backend sections."""

import os

import pytest

from conftest import run_bxrun
from timecal_core.config.timerc import load_timerc, timerc_location
from timecal_core.contract.errors import UserError


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TIMECAL_CONFIG", "XDG_CONFIG_HOME")}
    env["HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("TIMECAL_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert timerc_location() == tmp_path / "home" / ".config" / "timerc"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert timerc_location() == tmp_path / "xdg" / "timerc"
    monkeypatch.setenv("TIMECAL_CONFIG", str(tmp_path / "elsewhere.ini"))
    assert timerc_location() == tmp_path / "elsewhere.ini"


def test_missing_timerc_says_where_and_how(tmp_path):
    res = run_bxrun("--script", "sleeper", "--run", "seconds=0", "-o", "x", env=clean_env(tmp_path))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert str(tmp_path / "home" / ".config" / "timerc") in res.stderr
    assert "BXRun --init" in res.stderr


def test_init_writes_commented_timerc_with_data_paths(tmp_path):
    env = clean_env(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    res = run_bxrun("--init", str(tmp_path / "store"), env=env)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "xdg" / "timerc").read_text()
    assert text.count("#") > 5  # commented
    assert f"production  = {tmp_path / 'store' / 'production'}" in text
    for key in ("production", "scans", "calibration"):
        assert (tmp_path / "store" / key).is_dir()
    again = run_bxrun("--init", str(tmp_path / "other"), env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (tmp_path / "xdg" / "timerc").read_text() == text  # not overwritten


def test_init_default_data_dir(tmp_path):
    env = clean_env(tmp_path)
    res = run_bxrun("--init", env=env)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "home" / ".config" / "timerc").read_text()
    assert str(tmp_path / "home" / ".local" / "share" / "timecal" / "scans") in text


def test_sections_paths_and_init(tmp_path):
    path = tmp_path / "rc"
    path.write_text("[paths]\nproduction = ~/prod\n[cmssw]\ninit = module load cms && eval `scramv1 runtime -sh`\n"
                    "[slurm]\nqueue = debug\ncores = 4\n")
    rc = load_timerc(path)
    assert rc.cmssw_init == "module load cms && eval `scramv1 runtime -sh`"
    assert rc.section("slurm") == {"queue": "debug", "cores": "4"}
    assert rc.section("local") == {}
    assert str(rc.data_path("production")) == os.path.expanduser("~/prod")
    with pytest.raises(UserError, match=r"\[paths\] scans is not set"):
        rc.data_path("scans")


def test_malformed_timerc_is_one_line(tmp_path):
    path = tmp_path / "rc"
    path.write_text("paths without a section\n")
    with pytest.raises(UserError, match="not a valid timerc"):
        load_timerc(path)
