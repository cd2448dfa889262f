"""Plugin discovery through the ``timecal`` entry-point group: listing with distribution and
version, a third-party package installed with pip, duplicate names, broken plugins."""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import TESTS, pip_install_target, run_bxrun


def make_package(root, dist, module, body, version="0.0.1"):
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "{version}"
        [project.entry-points.timecal]
        {module} = "{module}"
        [tool.setuptools]
        packages = ["{module}"]
        """))
    (pkg / module / "__init__.py").write_text(textwrap.dedent(body))
    return pkg


def env_with(site):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_plugins_lists_every_kind_with_distribution_and_version(timerc):
    res = run_bxrun("--plugins")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for kind in ("backends:", "scripts:", "aggregators:", "evaluators:"):
        assert kind in out
    assert "local" in out and "timecal-backend-local 0.1.0" in out
    assert "pucalibration" in out and "timecal-script-pucalibration" in out
    assert "PUCalibration_cfg.py" in out  # the alias users type


def test_third_party_plugin_installed_with_pip_is_discovered_and_used(timerc, tmp_path):
    site = tmp_path / "site"
    res = run_bxrun("--plugins")
    assert "greeter" not in res.stdout  # not installed yet
    pip_install_target(TESTS / "plugins" / "timecal_greeter", site)
    env = env_with(site)
    listing = subprocess.run([sys.executable, "-m", "timecal_core.cli.bxrun", "--plugins"], env=env,
                             capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "greeter" in listing.stdout and "timecal-greeter 1.2.0" in listing.stdout
    assert "greetings" in listing.stdout  # its aggregator too
    out = tmp_path / "prod"
    run = subprocess.run([sys.executable, "-m", "timecal_core.cli.bxrun", "--script", "greeter", "--run",
                          "name=CBC", "-o", str(out)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (result,) = [p for p in (out / "results").iterdir() if not p.name.startswith(".")]
    assert (result / "hello.txt").read_text() == "hello CBC"


def test_two_plugins_registering_one_name_is_an_error_naming_both(timerc, tmp_path):
    pkg = make_package(tmp_path / "src", "timecal-imposter", "timecal_imposter", """
        from timecal_core.contract.hookspecs import ProductionScript, hookimpl
        @hookimpl
        def timecal_scripts():
            yield ProductionScript("pucalibration", (), lambda r: None)
        """, version="6.6.6")
    pip_install_target(pkg, tmp_path / "site")
    res = subprocess.run([sys.executable, "-m", "timecal_core.cli.bxrun", "--plugins"],
                         env=env_with(tmp_path / "site"), capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert "pucalibration" in line and "timecal-imposter 6.6.6" in line
    assert "timecal-script-pucalibration" in line


def test_a_plugin_that_fails_to_import_is_a_warning_and_the_others_load(timerc, tmp_path):
    pkg = make_package(tmp_path / "src", "timecal-broken", "timecal_broken", """
        raise ImportError("needs libfoo.so")
        """)
    pip_install_target(pkg, tmp_path / "site")
    res = subprocess.run([sys.executable, "-m", "timecal_core.cli.bxrun", "--plugins"],
                         env=env_with(tmp_path / "site"), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "timecal_broken" in res.stderr and "needs libfoo.so" in res.stderr
    assert "timecal-backend-local" in res.stdout  # the others still load


@pytest.mark.parametrize("args, expected", [
    (["--script", "nosuch", "--run", "a=1", "-o", "x"], "unknown script 'nosuch'; installed:"),
    (["--script", "sleeper", "--yaml", "g.yml", "--dask", "nosuch", "-o", "x"], "unknown backend 'nosuch'"),
])
def test_unknown_script_or_backend_lists_what_is_installed(timerc, tmp_path, args, expected):
    (tmp_path / "g.yml").write_text("seconds: 0\n")
    res = run_bxrun(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr and "Traceback" not in res.stderr
    assert "local" in res.stderr or "pucalibration" in res.stderr
    assert not (timerc.parent / "data" / "production" / "x").exists()


def refused_listing(pkg, site) -> str:
    """Install ``pkg`` and run ``--plugins``: it must fail in one line (exit 2), returned."""
    pip_install_target(pkg, site)
    res = subprocess.run([sys.executable, "-m", "timecal_core.cli.bxrun", "--plugins"],
                         env=env_with(site), capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    return line


def test_a_parameter_of_unknown_type_is_refused_when_the_plugin_registers(timerc, tmp_path):
    pkg = make_package(tmp_path / "src", "timecal-badtype", "timecal_badtype", """
        from timecal_core.contract.hookspecs import Parameter, ProductionScript, hookimpl
        @hookimpl
        def timecal_scripts():
            yield ProductionScript("badtype", (Parameter("x", "integer", 1),), lambda r: None)
        """, version="0.4.2")
    line = refused_listing(pkg, tmp_path / "site")
    assert "timecal_badtype (timecal-badtype 0.4.2)" in line
    assert "parameter 'x' with type 'integer'" in line and "allowed: int, float, str, bool, path" in line


def test_a_misspelled_hook_implementation_is_an_error_naming_the_plugin(timerc, tmp_path):
    pkg = make_package(tmp_path / "src", "timecal-typo", "timecal_typo", """
        from timecal_core.contract.hookspecs import ProductionScript, hookimpl
        @hookimpl
        def timecal_script():  # should be timecal_scripts: never called without the check
            yield ProductionScript("typo", (), lambda r: None)
        """, version="1.0.0")
    line = refused_listing(pkg, tmp_path / "site")
    assert "timecal_typo (timecal-typo 1.0.0)" in line and "unknown hook timecal_script" in line
    assert "timecal_scripts" in line  # what it should have been
