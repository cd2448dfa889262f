"""The CMSSW plugins are well-formed C++ (against a stand-in of the CMSSW API).

CMSSW cannot be installed here: tests/helpers/cmssw_stubs provides the subset of its C++
API the plugins use, and g++ -fsyntax-only checks the plugins against it with warnings as
errors and the CXXFLAGS of plugins/BuildFile.xml. The headers are checked the same way with
the strictest flags, since they must also build inside CMSSW.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.cxx_cbc import buildfile_cxxflags  # tests/ is on sys.path (rootdir, no __init__.py)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmssw" / "SiPhase2TimingCalibration"
STUBS = ROOT / "tests" / "helpers" / "cmssw_stubs"
STRICT = ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *buildfile_cxxflags()]


def test_build_file_turns_fp_contraction_off():
    """Bit-exactness of the compat model needs no fused multiply-add: scram must be told."""
    assert "-ffp-contract=off" in buildfile_cxxflags()


@pytest.fixture(scope="module")
def include_root(tmp_path_factory):
    """A src/-like tree where SimTracker/SiPhase2TimingCalibration is this package."""
    root = tmp_path_factory.mktemp("src")
    (root / "SimTracker").mkdir()
    (root / "SimTracker" / "SiPhase2TimingCalibration").symlink_to(PACKAGE)
    return root


@pytest.mark.parametrize("plugin", ["Phase2TrackerBXHistogram.cc", "SimHitDumper.cc"])
def test_plugin_compiles_against_the_cmssw_stand_in(plugin, include_root):
    cmd = [shutil.which("g++"), *STRICT, "-I", str(STUBS), "-I", str(include_root), str(PACKAGE / "plugins" / plugin)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("header", ["CBCTimingModel.h", "ModuleSmearing.h"])
def test_header_is_self_contained_and_pedantic(header, tmp_path):
    source = tmp_path / "only_header.cc"
    source.write_text(f'#include "{header}"\nint main() {{ return 0; }}\n')
    cmd = [shutil.which("g++"), *STRICT, "-pedantic", "-Wshadow", "-Wconversion", "-Wno-sign-conversion",
           "-I", str(PACKAGE / "interface"), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_plugin_build_file_declares_every_package_it_includes():
    """scram links only what BuildFile.xml <use>s: every CMSSW package included must be there."""
    import re

    build = (PACKAGE / "plugins" / "BuildFile.xml").read_text()
    used = set(re.findall(r'<use name="([^"]+)"', build))
    for source in (PACKAGE / "plugins").glob("*.[ch]*"):
        for include in re.findall(r'#include "([^"]+)"', source.read_text()):
            parts = include.split("/")
            if include == "TTree.h":
                assert "root" in used
            elif parts[0] == "CLHEP":
                assert "clhep" in used
            elif len(parts) > 2:
                assert "/".join(parts[:2]) in used, f"{source.name}: {include}"


def test_simhit_dumper_writes_the_schema_cbcsim_reads():
    """Tree name, branch names and leaf types of SimHitDumper.cc against the reader's schema."""
    import re

    from timecal_script_cbcsim.dump import TREE
    from timecal_script_cbcsim.hits import SimHits

    source = (PACKAGE / "plugins" / "SimHitDumper.cc").read_text()
    (tree,) = re.findall(r'make<TTree>\("(\w+)"', source)
    leaf_dtype = {"F": "f4", "D": "f8", "i": "u4", "I": "i4"}
    branches = {name: leaf_dtype[code] for name, leaf, code in
                re.findall(r'Branch\("(\w+)", &\w+, "(\w+)/(\w)"\)', source) if leaf == name}
    assert tree == TREE
    assert branches == SimHits.DTYPES


INCLUDER = """{extra}#include "SimTracker/SiPhase2TimingCalibration/plugins/OuterTrackerSimHits.h"
static const double ns = 2.0, cm = 3.0;  // names every CLHEP unit header also defines
int main() {{ return ns + cm > 0 ? 0 : 1; }}
"""


@pytest.mark.parametrize("extra, compiles", [("", True), ('#include "CLHEP/Units/GlobalSystemOfUnits.h"\n', False)])
def test_the_shared_header_leaks_no_using_directive(extra, compiles, include_root, tmp_path):
    """CLHEP/Units/Global*.h put `using namespace CLHEP;` into every file that includes them
    (the stand-in's copies do as CLHEP's do), after which a file's own `ns` or `cm` is
    ambiguous. OuterTrackerSimHits.h uses the namespaced headers: an includer with its own
    names compiles; the same file with a Global header does not (the check can fail)."""
    source = tmp_path / "includer.cc"
    source.write_text(INCLUDER.format(extra=extra))
    cmd = [shutil.which("g++"), *STRICT, "-I", str(STUBS), "-I", str(include_root), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert (result.returncode == 0) == compiles, result.stderr
    if not compiles:
        assert "ambiguous" in result.stderr


def test_factorials_come_from_an_exact_table():
    """No libm tgamma in the pulse: its last bits differ between implementations, while the
    table holds the exact integers (each exactly representable up to 20!)."""
    header = (PACKAGE / "interface" / "CBCTimingModel.h").read_text()
    assert "tgamma" not in header.split("static double factorial")[1].split("}")[0]
    import math
    import re

    table = [float(v) for v in re.search(r"kFactorials\[\] = \{([^}]*)\}", header).group(1).split(",")]
    assert table == [float(math.factorial(n)) for n in range(21)]
    assert all(float(math.factorial(n)) == math.factorial(n) for n in range(21))
