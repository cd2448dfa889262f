"""The parameter record inside a ROOT output: the core stores every task's parameters in
its ``.root`` output (a TObjString of JSON under ``timecal_params``), so that a file copied
away from its production still says what it is. Registered with the core as the record
keeper of ``.root`` outputs (:mod:`timecal_core.cms.plugin`): the generic task runner knows
no ROOT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .harvested_layout import PARAMS_KEY


def embed_parameters(path: Path, params: dict[str, Any]) -> None:
    """Store the parameters inside an existing ROOT file (e.g. one CMSSW wrote)."""
    import uproot

    with uproot.open(path) as f:  # uproot 5.7's update mode cannot test membership in files
        present = PARAMS_KEY in f  # with directories, so look first with a reader
        if present and _same_json(str(f[PARAMS_KEY]), params):
            return  # the step stored it already (TASK_PARAMETERS_ENV): no rewrite, ~0.2 s saved
    with uproot.update(path) as f:
        if present:
            del f[PARAMS_KEY]
        f[PARAMS_KEY] = json.dumps(params, sort_keys=True)


def _same_json(stored: str, params: dict[str, Any]) -> bool:
    try:
        return json.loads(stored) == json.loads(json.dumps(params, sort_keys=True))
    except ValueError:
        return False


def read_parameters(path: Path) -> dict[str, Any] | None:
    import uproot

    with uproot.open(path) as f:
        if PARAMS_KEY not in f:
            return None
        return json.loads(str(f[PARAMS_KEY]))
