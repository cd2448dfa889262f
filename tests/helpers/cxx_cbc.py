"""Compile and run the CMSSW-free CBC header (cmssw/.../CBCTimingModel.h) from Python.

The header is the analyzer's logic; this module is how the tests compare it with the golden
vectors and the Python emulator, and how ``benchmarks/bench_cbcsim.py`` times the
analyzer's own loop as its baseline.

Public API
----------
``run_cxx(charge, toa, threshold, delays_or_range, model="compat", opt="-O2",
pulse_table=False) -> dict``

- ``charge``, ``toa``: 1-D arrays of the hits (cast to float32: electrons, ns).
- ``threshold``: scalar or per-hit array (cast to float32, electrons); per-module smearing is
  expressed by giving each hit its module's smeared threshold.
- ``delays_or_range``: a ``tuple`` ``(min, max, step)`` asks the C++ side for the analyzer's
  accumulated delay list (physics.md §4); any other sequence/array is taken as the explicit
  float64 delays.
- ``model``: ``"compat"`` or ``"exact"``; ``opt``: optimisation flags for g++ (a string,
  split on spaces). ``-std=c++17`` and the CXXFLAGS of the package's
  ``plugins/BuildFile.xml`` (``-ffp-contract=off``: a fused multiply-add could flip a
  threshold comparison and break exactness) are always added, so the goldens are checked
  with the flags the plugins are built with in CMSSW.
- ``pulse_table=True`` also returns the compat table S(k), k = 0..99, per delay.

Returns ``{"delays": float64[D], "sampled", "latched": int64[D, 13] (ROOT bins incl.
under/overflow of TH1F(11, -5.5, 5.5)), "attribution_sampled", "attribution_latched":
int64[D, 7] (TH1(5, -0.5, 4.5) incl. flows), "n_hits": int, "seconds": float (the C++ hit
loop only, as measured by the driver), "wall_seconds": float (whole run incl. I/O),
"pulse_table": float64[D, 100] (only if asked)}``.

Binaries are cached in ``$TIMECAL_CXX_CACHE`` (default ``~/.cache/timecal/cxx_cbc``), keyed by
the hash of the header, the driver and the flags; builds are atomic so parallel callers are
safe. ``build(opt)`` returns the binary path. Raises ``RuntimeError`` with the compiler's or
driver's message when either fails, ``ValueError`` on inconsistent inputs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "cmssw" / "SiPhase2TimingCalibration"
HEADER = PACKAGE / "interface" / "CBCTimingModel.h"
DRIVER = PACKAGE / "test" / "standalone" / "cbc_standalone.cc"
BUILD_FILE = PACKAGE / "plugins" / "BuildFile.xml"


def buildfile_cxxflags() -> tuple[str, ...]:
    """The CXXFLAGS that plugins/BuildFile.xml gives scram for the plugins."""
    text = re.sub(r"<!--.*?-->", "", BUILD_FILE.read_text(), flags=re.S)
    return tuple(flag for value in re.findall(r'<flags\s+CXXFLAGS="([^"]*)"\s*/>', text) for flag in value.split())


BASE_FLAGS = ("-std=c++17", *buildfile_cxxflags())
N_BX_BINS = 13
N_ATTR_BINS = 7
TABLE_LENGTH = 100


def cache_dir() -> Path:
    return Path(os.environ.get("TIMECAL_CXX_CACHE", Path.home() / ".cache" / "timecal" / "cxx_cbc"))


def build(opt: str = "-O2") -> Path:
    """Compile the driver once per (sources, flags); return the cached binary."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    flags = [*BASE_FLAGS, *shlex.split(opt)]
    digest = hashlib.sha256()
    for source in (HEADER, DRIVER):
        digest.update(source.read_bytes())
    digest.update(" ".join([compiler, *flags]).encode())
    binary = cache_dir() / f"cbc_standalone-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=binary.name + ".", dir=binary.parent)
    os.close(fd)
    try:
        proc = subprocess.run([compiler, *flags, "-o", tmp, str(DRIVER)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {DRIVER.name} failed:\n{proc.stderr}")
        os.replace(tmp, binary)  # atomic: concurrent builders all end with a complete binary
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return binary


def _hit_arrays(charge, toa, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    charge = np.ascontiguousarray(charge, dtype=np.float32).ravel()
    toa = np.ascontiguousarray(toa, dtype=np.float32).ravel()
    if charge.shape != toa.shape:
        raise ValueError(f"charge ({charge.size}) and toa ({toa.size}) differ in length")
    threshold = np.asarray(threshold, dtype=np.float32)
    if threshold.ndim == 0:
        threshold = np.full(charge.shape, threshold, dtype=np.float32)
    threshold = np.ascontiguousarray(threshold).ravel()
    if threshold.shape != charge.shape:
        raise ValueError(f"threshold has {threshold.size} values for {charge.size} hits")
    return charge, toa, threshold


def run_cxx(charge, toa, threshold, delays_or_range, model: str = "compat", opt: str = "-O2",
            pulse_table: bool = False) -> dict:
    """Run the header's analyzer loop over the hits; see the module docstring."""
    if model not in ("compat", "exact"):
        raise ValueError(f"model must be 'compat' or 'exact', got {model!r}")
    charge, toa, threshold = _hit_arrays(charge, toa, threshold)
    binary = build(opt)
    with tempfile.TemporaryDirectory(prefix="cbc_cxx_") as work:
        work = Path(work)
        hits_path = work / "hits.bin"
        with open(hits_path, "wb") as handle:
            for array in (charge, toa, threshold):
                handle.write(array.tobytes())
        cmd = [str(binary), "--model", model, "--hits", str(charge.size), "--input", str(hits_path),
               "--out", str(work / "out.bin"), "--delays-out", str(work / "delays.bin")]
        if isinstance(delays_or_range, tuple):
            if len(delays_or_range) != 3:
                raise ValueError(f"a delay range is (min, max, step), got {delays_or_range!r}")
            cmd += ["--range", *(repr(float(v)) for v in delays_or_range)]
        else:
            delays = np.ascontiguousarray(delays_or_range, dtype=np.float64).ravel()
            if delays.size == 0:
                raise ValueError("no delays given")
            (work / "delays_in.bin").write_bytes(delays.tobytes())
            cmd += ["--delays", str(work / "delays_in.bin")]
        if pulse_table:
            cmd += ["--pulse-table-out", str(work / "pulse.bin")]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{binary.name} failed ({proc.returncode}): {proc.stderr.strip()}")
        report = dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())
        delays = np.fromfile(work / "delays.bin", dtype=np.float64)
        n_delays = delays.size
        out = np.fromfile(work / "out.bin", dtype=np.int64)
        sizes = [n_delays * N_BX_BINS, n_delays * N_BX_BINS, n_delays * N_ATTR_BINS, n_delays * N_ATTR_BINS]
        if out.size != sum(sizes):
            raise RuntimeError(f"{binary.name} wrote {out.size} counts, expected {sum(sizes)}")
        parts = np.split(out, np.cumsum(sizes)[:-1])
        result = {
            "delays": delays,
            "sampled": parts[0].reshape(n_delays, N_BX_BINS),
            "latched": parts[1].reshape(n_delays, N_BX_BINS),
            "attribution_sampled": parts[2].reshape(n_delays, N_ATTR_BINS),
            "attribution_latched": parts[3].reshape(n_delays, N_ATTR_BINS),
            "n_hits": int(charge.size),
            "seconds": float(report["compute_seconds"]),
            "wall_seconds": wall,
        }
        if pulse_table:
            result["pulse_table"] = np.fromfile(work / "pulse.bin", dtype=np.float64).reshape(n_delays, TABLE_LENGTH)
    return result
