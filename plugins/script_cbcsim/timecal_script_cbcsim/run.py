"""The cbcsim step: ``python -m timecal_script_cbcsim k=v ...`` writes, in the current
directory, the harvested file of physics.md §6 that the CMSSW chain would have written
(``BXHistScan_..._harvested.root`` or ``BXHistEmulateDelay_<d>_..._harvested.root``).

Besides the histograms it stores the job's parameters (``timecal_params``, replaced by the
core with the complete record when run as a task), ``cbcsim_info`` (JSON: hit source, hits
selected, smearing summary, delay, layout) and, in the full layout, the per-module smearing
table (tree ``smearing``). The compact layout (the task's record says "layout": "compact")
leaves out the 1D histograms and the smearing table: the 2D maps hold every number the
readers use.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import COMPACT, FULL, harvested_name, scan_delays
from timecal_core.contract.hookspecs import TASK_PARAMETERS_ENV
from timecal_core.contract.errors import UserError
from timecal_core.config.parameters import complete, parse_assignments

from . import __version__, hitcache
from .detection import emulate
from .dump import iterate_dump, read_modules
from .hits import SimHits, selection
from .params import PARAMETERS, check
from .smearing import ModuleSmearing
from .synthetic import SyntheticModel, generate_chunks

CHUNK = 1_000_000
WRITER_ENV = "TIMECAL_CBCSIM_WRITER"  # "uproot": one uproot assignment per object (the
# pre-issue-17 writer, kept for comparison in benchmarks/bench_production.py)


def delays_of(params) -> np.ndarray:
    if params["mode"] == "scan":
        return scan_delays(params["offset_min"], params["offset_max"], params["offset_step"])
    return np.array([params["offset"]], dtype=np.float64)


def _hit_chunks(params):
    """(a callable giving fresh chunks of all hits, their sorted module ids, the source label)
    for the dump or the synthetic model."""
    if params["hits"]:
        path = Path(params["hits"]).expanduser()
        cached = hitcache.lookup(path)
        if cached is not None:  # read once by this worker's step server (hitcache)
            hits, modules = cached
            def cached_chunks():
                return (hits.take(slice(i, i + CHUNK)) for i in range(0, len(hits), CHUNK))
            return cached_chunks, modules, str(path.resolve())
        modules = read_modules(path)
        return (lambda: iterate_dump(path, step_size=CHUNK)), modules, str(path.resolve())
    model = SyntheticModel(N=params["N"], pileup=params["pileup"], nhits=params["nhits"])
    def chunks():
        return generate_chunks(model, params["seed"], CHUNK)
    # Two passes (the smearing table needs every module first); generation is cheap.
    modules = np.unique(np.concatenate([np.unique(c.module) for c in chunks()] or [np.zeros(0, np.uint32)]))
    return chunks, modules, "synthetic"


def run(params) -> Path:
    began, began_cpu = time.perf_counter(), time.process_time()
    delays = delays_of(params)
    cached = bool(params["hits"]) and hitcache.lookup(Path(params["hits"]).expanduser()) is not None
    chunks, modules, source = _hit_chunks(params)
    smearing = ModuleSmearing.draw(modules, params["thresholdsmearing"], params["tofsmearing"], params["seed"])
    say = print if params["verbose"] else (lambda *a, **k: None)
    total = None
    n_selected = n_read = 0
    start = time.perf_counter()
    for hits in chunks():
        n_read += len(hits)
        sel: SimHits = hits.take(selection(hits, params["pt"], params["subdet"]))
        toa, thr = smearing.apply(sel.module, sel.toa, params["threshold"])
        part = emulate(sel.charge, toa, thr, delays, params["model"], offset_step=params["offset_step"])
        n_selected += len(sel)
        if total is None:
            total = part
        else:
            for name in ("sampled", "latched", "attribution_sampled", "attribution_latched"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.n_hits += part.n_hits
        say(f"cbcsim: {n_read} hits read, {n_selected} selected, {time.perf_counter() - start:.1f} s", flush=True)
    if total is None:  # an empty dump: empty histograms, still a valid file
        total = emulate(np.zeros(0), np.zeros(0), params["threshold"], delays, params["model"],
                        offset_step=params["offset_step"])
    delay = None if params["mode"] == "scan" else float(delays[0])
    out = Path.cwd() / harvested_name(params, delay)
    info = {"version": __version__, "source": source, "hits_read": n_read, "hits_selected": n_selected,
            "delays": int(delays.size), "delay": delay, "model": params["model"],
            "smearing": smearing.summary(), "seed": params["seed"],
            "hits_cached": cached}
    if source == "synthetic":
        info["synthetic_model"] = SyntheticModel(N=params["N"], pileup=params["pileup"],
                                                 nhits=params["nhits"]).as_dict()

    given = os.environ.get(TASK_PARAMETERS_ENV)  # the core's record, when run as a task
    stored = json.loads(given) if given else {"params": dict(params), "metadata": {"delay": delay}}
    # The compact layout (issue 28): the 2D maps and the records, without the 1D histograms
    # the maps repeat nor the per-module smearing table (a function of the seed and the hit
    # source, written in the full layout; its summary is in cbcsim_info).
    compact = stored.get("layout") == COMPACT
    info["layout"] = COMPACT if compact else FULL

    def add_info(f) -> None:
        f["cbcsim_info"] = json.dumps(info, sort_keys=True)
        if compact:
            return
        table = {"module": smearing.modules, "threshold_offset": smearing.threshold_offset,
                 "toa_offset": smearing.toa_offset}
        tree = f.mktree("smearing", {k: v.dtype for k, v in table.items()}, title="per-module smearing")
        tree.extend(table)

    computed, computed_cpu = time.perf_counter(), time.process_time()
    write_histograms(out, total, params=stored, with_1d=not compact,
                     fast=os.environ.get(WRITER_ENV, "fast") != "uproot", also=add_info)
    # One line in task.log for every task: where its time went (benchmarks/bench_production.py).
    print(f"cbcsim: wrote {out.name} ({n_selected} hits x {delays.size} delays): hits and emulation "
          f"{computed - began:.4f} s, write {time.perf_counter() - computed:.4f} s (CPU "
          f"{computed_cpu - began_cpu:.4f} s, {time.process_time() - computed_cpu:.4f} s)", flush=True)
    return out


_rehearsed: set = set()
REHEARSAL_HITS = 5000


def timecal_warm_prepare(argv) -> None:
    """Called by the worker's step server before it forks a task (timecal_core.run.step_server): load
    into the server, once, what every task of this worker reuses: the sim-hit dump, and a
    rehearsal of the task on a few synthetic hits (imports, lazily built tables, the pulse
    table of these delays, the writer's templates and histogram names, numpy's first-call
    paths), which makes each forked task ~25 % cheaper than a first run."""
    params = complete(PARAMETERS, parse_assignments([a for a in argv if a != "-v"], "cbcsim"), "cbcsim")
    if params["hits"]:
        hitcache.load(Path(params["hits"]).expanduser())
    key = (delays_of(params).tobytes(), params["model"], params["offset_step"], params["mode"])
    if key in _rehearsed:
        return
    import contextlib
    import io
    import tempfile

    rehearsal = {**params, "hits": "", "nhits": REHEARSAL_HITS, "verbose": 0}
    with tempfile.TemporaryDirectory(prefix="cbcsim-rehearsal-") as tmp, \
            contextlib.redirect_stdout(io.StringIO()):
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            run(rehearsal)
        finally:
            os.chdir(cwd)
    _rehearsed.add(key)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    try:
        params = complete(PARAMETERS, parse_assignments(argv, "cbcsim"), "cbcsim")
        check(params)
        if params["mode"] == "emulate" and params["offset"] < 0:
            raise UserError("cbcsim step: emulate mode needs an explicit offset >= 0 (the plugin draws "
                            "offset=-1 from the seed when planning)")
        run(params)
    except UserError as exc:
        if debug:
            raise
        print(f"cbcsim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
