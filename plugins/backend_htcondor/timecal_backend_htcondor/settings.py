"""timerc ``[htcondor]`` turned into ``HTCondorCluster`` arguments: the keys only HTCondor
has (disk, submit directives, log directory, schedd). The keys every batch system shares
(cores, memory, prologue, addresses, timeouts...) are parsed by ``timecal_core.batch.supervision``;
keys the user leaves out come from their own jobqueue.yaml (``jobqueue.htcondor.*``).
"""

from __future__ import annotations

from pathlib import Path

from timecal_core.batch.settings import BatchSettings, keys_help, parse_batch_settings, size_setting
from timecal_core.config.timerc import setting_lines
from timecal_core.contract.errors import UserError

SECTION = "htcondor"
CONNECT_TIMEOUT = 300

OWN_KEYS = {
    "disk": "request_disk per job, e.g. 5GB (default 2GB)",
    "submit_directives": 'extra submit lines "key = value", one per line, e.g. +JobFlavour = "workday"',
    "log_directory": "where worker .out/.err/.log files go (default <output>/logs)",
    "schedd": "schedd to submit to (condor_submit -name), e.g. one of lxplus's bigbird schedds; "
              "default: the one condor_submit picks",
}
#: key -> help, as the README lists them.
KEYS = keys_help(OWN_KEYS, CONNECT_TIMEOUT)


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
        SECTION, raw, output_dir, OWN_KEYS, connect_timeout=CONNECT_TIMEOUT,
        log_directory=Path(log_directory).expanduser() if log_directory else None)
    kwargs = settings.cluster_kwargs
    kwargs["disk"] = size_setting(SECTION, own, "disk", "2GB")
    directives = submit_directives(own.get("submit_directives", ""))
    if directives:
        kwargs["job_extra_directives"] = directives
    schedd = own.get("schedd", "").strip() or None
    if schedd:  # submit to and remove from that schedd, whatever this login node's default is
        kwargs["submit_command_extra"] = ["-name", schedd]
        kwargs["cancel_command_extra"] = ["-name", schedd]
    settings.own["schedd"] = schedd
    return settings
