"""timerc ``[htcondor]`` turned into ``HTCondorCluster`` arguments: the keys only HTCondor
has (disk, submit directives, log directory, schedd). The keys every batch system shares
(cores, memory, prologue, addresses, timeouts...) are parsed by ``timecal_core.batch.supervision``;
keys the user leaves out come from their own jobqueue.yaml (``jobqueue.htcondor.*``).
"""

from __future__ import annotations

from pathlib import Path

from timecal_core.batch.settings import BatchSettings, batch_section, parse_batch_settings, size_setting
from timecal_core.config.timerc import setting_lines
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import Setting

SECTION = "htcondor"
CONNECT_TIMEOUT = 300

OWN_KEYS = (
    Setting("disk", "size", "2GB", "request_disk per job"),
    Setting("submit_directives", "lines", help='extra submit lines "key = value", one per line, e.g. '
            '+JobFlavour = "workday"'),
    Setting("log_directory", "path", "<output>/logs", "where worker .out/.err/.log files go"),
    Setting("schedd", "text", "the one condor_submit picks", "schedd to submit to (condor_submit "
            "-name), e.g. one of lxplus's bigbird schedds"),
)
SETTINGS = batch_section(SECTION, OWN_KEYS, CONNECT_TIMEOUT, help=(
    "Dask workers in HTCondor jobs (``--dask htcondor``: lxplus, DESY, Tier-2s). Keys left out "
    "come from your own ``~/.config/dask/jobqueue.yaml`` (``jobqueue.htcondor.*``) where "
    "dask-jobqueue reads one."))


def submit_directives(text: str) -> dict[str, str]:
    """``key = value`` lines; ``+Attr`` (the classic spelling) and ``MY.Attr`` are both kept
    as written, condor_submit understands both."""
    directives = {}
    for line in setting_lines(text):
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"timerc [{SECTION}] submit_directives: {line!r} is not 'key = value' "
                            f"(e.g. +JobFlavour = \"workday\")")
        directives[key.strip()] = value.strip()
    return directives


def parse_settings(raw: dict[str, str], output_dir: Path) -> BatchSettings:
    """Validate ``[htcondor]``; a wrong key or value is a one-line UserError naming it."""
    log_directory = (raw.get("log_directory") or "").strip()
    settings, own = parse_batch_settings(
        SETTINGS, raw, output_dir, OWN_KEYS,
        log_directory=Path(log_directory).expanduser() if log_directory else None)
    kwargs = settings.cluster_kwargs
    kwargs["disk"] = size_setting(SECTION, own, "disk", SETTINGS.default("disk"))
    directives = submit_directives(own.get("submit_directives", ""))
    if directives:
        kwargs["job_extra_directives"] = directives
    schedd = own.get("schedd", "").strip() or None
    if schedd:  # submit to and remove from that schedd, whatever this login node's default is
        kwargs["submit_command_extra"] = ["-name", schedd]
        kwargs["cancel_command_extra"] = ["-name", schedd]
    settings.own["schedd"] = schedd
    return settings
