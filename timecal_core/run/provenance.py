"""Where and with what software an attempt ran, as ``params.json`` and the ledger record it.

A result questioned months later ("which CMSSW release made this histogram? on which node,
with which cfg?") must answer from itself: each task's ``params.json`` carries the host,
the worker, the batch job, the resources its steps used and the software (timecal and
plugin versions, Python, and for CMSSW steps the release ``$CMSSW_VERSION`` reported after
``[cmssw] init`` and the SHA-256 of the cfg file). The same fields go to the ledger (every
attempt, failed ones included) and to ``summary.parquet``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The file a CMSSW step writes its release to, after init, before exec'ing cmsRun.
CMSSW_RELEASE_FILE = ".timecal-cmssw-release"


def batch_job_id() -> str | None:
    """The batch job this worker runs in: SLURM's job id, HTCondor's ClusterId.ProcId."""
    if os.environ.get("SLURM_JOB_ID"):
        return os.environ["SLURM_JOB_ID"]
    ad = os.environ.get("_CONDOR_JOB_AD")
    if ad:
        values: dict[str, str] = {}
        try:
            with open(ad, errors="replace") as fh:
                for line in fh:
                    key, sep, value = line.partition("=")
                    if sep and key.strip() in ("ClusterId", "ProcId"):
                        values[key.strip()] = value.strip()
        except OSError:
            return None
        if "ClusterId" in values:
            return f"{values['ClusterId']}.{values.get('ProcId', '0')}"
    return None


def host() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def software_versions() -> dict[str, Any]:
    """timecal, Python and every installed plugin distribution with its version (once per
    worker process)."""
    from .. import __version__
    from ..contract.plugins import get_registry

    registry = get_registry()
    plugins = {}
    for kind in ("backends", "scripts", "aggregators", "evaluators", "commands"):
        for reg in getattr(registry, kind).values():
            plugins[reg.distribution] = reg.version
    return {"timecal": __version__, "python": platform.python_version(),
            "plugins": dict(sorted(plugins.items()))}


def sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def cmssw_software(workdir: Path, cfg_files: Iterable[Path]) -> dict[str, Any]:
    """The CMSSW release the steps saw after init, and the cfg files' hashes."""
    out: dict[str, Any] = {}
    try:
        release = (workdir / CMSSW_RELEASE_FILE).read_text().strip()
    except OSError:
        release = ""
    if release:
        out["cmssw"] = release
    cfgs = {}
    for cfg in cfg_files:
        digest = sha256(cfg)
        if digest:
            cfgs[cfg.name] = digest
    if cfgs:
        out["cfg_sha256"] = cfgs
    return out


def usage(steps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The resources of an attempt from its steps' records: CPU summed, peak RSS the
    largest of any step."""
    steps = list(steps)
    if not steps:
        return {}
    return {"cpu": round(sum(s.get("user", 0.0) + s.get("sys", 0.0) for s in steps), 4),
            "maxrss_kib": max(int(s.get("maxrss_kib") or 0) for s in steps)}


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """params.json's provenance as flat columns (summary.parquet)."""
    software = record.get("software") or {}
    out = {key: record.get(key) for key in ("host", "worker", "job_id", "start", "end", "cpu",
                                            "maxrss_kib", "output_bytes")}
    if out["start"] is not None and out["end"] is not None:
        out["wall"] = out["end"] - out["start"]
    else:
        out["wall"] = None
    out["timecal_version"] = software.get("timecal")
    out["python_version"] = software.get("python")
    out["cmssw_release"] = software.get("cmssw")
    cfgs = software.get("cfg_sha256") or {}
    out["cfg_sha256"] = ";".join(f"{k}:{v}" for k, v in sorted(cfgs.items())) or None
    plugins = software.get("plugins") or {}
    out["plugins"] = ";".join(f"{k}=={v}" for k, v in plugins.items()) or None
    return out
