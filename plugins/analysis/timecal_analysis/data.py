"""The observables table in a notebook: the seed's ``Data`` / ``Observable`` / ``GetSlice``
workflow with Pythonic names.

    data = ScanData.load("/data/scans/my_scan")           # directory or .parquet file
    eff = data.observable("Efficiency", mode="Sampled")
    curve = eff.slice({"threshold": 5800, "Threshold smearing": 0})
    delays, values, errors = curve.arrays()
    eff.slice(thresholdsmearing=0).plot(ax, "threshold")   # one curve per threshold
    eff.slice(thresholdsmearing=0).plot_map(ax, "threshold")

Parameter names may be given as in the production (``thresholdsmearing``) or as written
for people (``Threshold smearing``, ``ToF smearing [ns]``): case, spaces, underscores and a
trailing unit are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from timecal_core.contract.errors import UserError
from .observables import TABLE_NAME, ObservableDef, observable, parameter_columns, same_value
from .plotting import DEFAULT_LABELS, OnAxes, curve_matrix, draw_curves, draw_map
from .store import Store


def _normalise(name: str) -> str:
    name = str(name).split("[")[0]
    return "".join(ch for ch in name.lower() if ch.isalnum())


class ScanData:
    """One scan's observables (every file, mode and delay)."""

    def __init__(self, table: pd.DataFrame, labels: Mapping[str, str] | None = None):
        self.table = table
        self.labels = dict(labels or {})

    @classmethod
    def load(cls, path: str | Path, labels: Mapping[str, str] | None = None) -> ScanData:
        """From plotScan's output directory (or its ``observables.parquet``): the task table
        and the per-delay values joined into one wide table (tables of timecal before the
        task table, which held the parameters on every row, are read as they are)."""
        path = Path(path).expanduser()
        directory = path if path.is_dir() else path.parent
        if Store.exists(directory):
            return cls(Store(directory).table(), labels)
        path = directory / TABLE_NAME
        if not path.is_file():
            raise UserError(f"{path}: no observables table; run plotScan (or the production's aggregator) first")
        return cls(pd.read_parquet(path), labels)

    @property
    def parameters(self) -> list[str]:
        return parameter_columns(self.table)

    def parameter(self, name: str) -> str:
        """The column of a parameter named as in the production or as a label."""
        if name in self.parameters:
            return name
        wanted = _normalise(name)
        for column in self.parameters:
            spellings = {column, self.labels.get(column, ""), DEFAULT_LABELS.get(column, "")}
            if wanted in {_normalise(s) for s in spellings if s}:
                return column
        raise UserError(f"unknown parameter '{name}'; the table has: {', '.join(self.parameters)}")

    def values(self, name: str) -> list[Any]:
        return sorted(self.table[self.parameter(name)].unique())

    def observable(self, name: str, mode: str = "Sampled") -> ObservableData:
        modes = sorted(self.table["mode"].unique())
        if mode not in modes:
            raise UserError(f"mode '{mode}' is not in the table; it has: {', '.join(modes)}")
        return ObservableData(self, observable(name), mode, self.table[self.table["mode"] == mode])


class ObservableData:
    """One observable in one mode, possibly restricted to some parameter values."""

    def __init__(self, data: ScanData, definition: ObservableDef, mode: str, rows: pd.DataFrame):
        self.data, self.definition, self.mode, self.rows = data, definition, mode, rows

    def slice(self, selection: Mapping[str, Any] | None = None, **by_name: Any) -> ObservableData:
        """Rows where each named parameter takes the given value (or one of a list of them)."""
        rows = self.rows
        for name, wanted in {**(selection or {}), **by_name}.items():
            column = self.data.parameter(name)
            options = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
            keep = [v for v in pd.unique(rows[column]) if any(same_value(v, w) for w in options)]
            mask = rows[column].isin(keep)
            if not mask.any():
                raise UserError(f"{column} = {wanted!r} selects nothing; values: "
                                f"{', '.join(map(str, self.data.values(column)))}")
            rows = rows[mask]
        return ObservableData(self.data, self.definition, self.mode, rows)

    @property
    def varying(self) -> list[str]:
        """Parameters still taking several values (each value is one curve)."""
        return [c for c in self.data.parameters if self.rows[c].nunique() > 1]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(delays, values, errors or None) of a slice that holds exactly one curve."""
        if self.rows["file"].nunique() != 1:
            raise UserError(f"the slice holds {self.rows['file'].nunique()} curves; fix "
                            f"{', '.join(self.varying) or 'more parameters'} with slice()")
        rows = self.rows.sort_values("delay")
        errors = rows[self.definition.error_key].to_numpy() if self.definition.error_key else None
        return rows["delay"].to_numpy(), rows[self.definition.key].to_numpy(), errors

    def matrix(self, parameter: str) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
        """(values of ``parameter``, delays, observable[value, delay], errors[value, delay])."""
        column = self._curve_parameter(parameter)
        return curve_matrix(self.rows, self.definition, column)

    def plot(self, ax, parameter: str | None = None):
        """Curves vs delay on ``ax``, one per value of ``parameter`` (coloured, with a colour bar)."""
        column = self._curve_parameter(parameter)
        values, delays, matrix, errors = curve_matrix(self.rows, self.definition, column)
        draw_curves(OnAxes(ax), self.definition, column, values, delays, matrix, errors, self.data.labels)
        return ax

    def plot_map(self, ax, parameter: str | None = None):
        """The delay x ``parameter`` map on ``ax`` with a colour bar."""
        column = self._curve_parameter(parameter)
        values, delays, matrix, errors = curve_matrix(self.rows, self.definition, column)
        draw_map(OnAxes(ax), self.definition, column, values, delays, matrix, errors, self.data.labels)
        return ax

    def _curve_parameter(self, parameter: str | None) -> str:
        varying = self.varying
        column = self.data.parameter(parameter) if parameter else (varying[0] if varying else self.data.parameters[0])
        others = [v for v in varying if v != column]
        if others:
            raise UserError(f"{', '.join(others)} still vary; fix them with slice() to draw curves of {column}")
        return column
