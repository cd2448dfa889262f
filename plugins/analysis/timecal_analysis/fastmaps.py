"""Reading the analyzer's 2D maps straight from their bytes.

Building uproot's model of a TH2F (every TH1 member, three axes, attributes) costs about
1.5 ms, and a scan file holds six maps: most of plotScan's time on a large production,
and more than ROOT itself needs. The maps are written by ROOT 6 with fixed streamer
versions (TH2F/TH2D 4, TH2 5, TH1 8, TAxis 10) in which every nested object carries its
byte count, so the contents, the sum of squared weights and the axes are reached by
skipping. Any other version, or byte counts that do not add up, falls back to uproot's
model: the fast path is an optimisation, never a second opinion.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_HEADER = struct.Struct(">IH")  # byte count (with the kByteCountMask flag), class version
_BYTE_COUNT_FLAG = 0x40000000
_INT = struct.Struct(">i")
_AXIS = struct.Struct(">idd")  # fNbins, fXmin, fXmax
_ARRAY_TYPES = {"TH2F": ">f4", "TH2D": ">f8"}
_VERSIONS = {"TH2x": 4, "TH2": 5, "TH1": 8, "TAxis": 10}


@dataclass
class Map2D:
    """A 2D histogram as the observables need it; arrays indexed [ix, iy], flows included
    (the convention of uproot's ``values(flow=True)``)."""

    values: np.ndarray
    sumw2: np.ndarray | None
    y_bins: tuple[int, float, float]  # nbins, low, high (uniform)

    def errors(self) -> np.ndarray:
        return np.sqrt(self.sumw2) if self.sumw2 is not None else np.sqrt(np.abs(self.values))

    def y_centres(self) -> np.ndarray:
        n, low, high = self.y_bins
        return low + (np.arange(n) + 0.5) * (high - low) / n


class _Unexpected(Exception):
    """The bytes are not the layout this module knows."""


def read_map(directory, name: str) -> Map2D:
    """``name`` in an uproot directory; raises uproot's KeyInFileError when absent."""
    key = directory.key(name)
    dtype = _ARRAY_TYPES.get(key.fClassName)
    if dtype is not None:
        chunk, cursor = key.get_uncompressed_chunk_cursor()
        try:
            return decode(bytes(chunk.raw_data[cursor.index:]), dtype)
        except (_Unexpected, struct.error, ValueError):
            pass
    return _from_model(key.get())


def _from_model(h) -> Map2D:
    y = h.axis(1)
    edges = y.edges()
    variances = h.variances(flow=True)
    return Map2D(h.values(flow=True), variances, (len(edges) - 1, float(edges[0]), float(edges[-1])))


def _open(buf: bytes, pos: int, expected: int | None) -> tuple[int, int]:
    """Position after an object header, and the position where the object ends."""
    count, version = _HEADER.unpack_from(buf, pos)
    if not count & _BYTE_COUNT_FLAG or (expected is not None and version != expected):
        raise _Unexpected
    return pos + _HEADER.size, pos + 4 + (count & ~_BYTE_COUNT_FLAG)


def _skip(buf: bytes, pos: int) -> int:
    return _open(buf, pos, None)[1]


def _axis(buf: bytes, pos: int) -> tuple[tuple[int, float, float], int]:
    inner, end = _open(buf, pos, _VERSIONS["TAxis"])
    inner = _skip(buf, _skip(buf, inner))  # TNamed, TAttAxis
    return _AXIS.unpack_from(buf, inner), end


def decode(buf: bytes, dtype: str) -> Map2D:
    """TH2F/TH2D streamer (versions above) -> Map2D."""
    pos, th2x_end = _open(buf, 0, _VERSIONS["TH2x"])
    pos, th2_end = _open(buf, pos, _VERSIONS["TH2"])
    pos, th1_end = _open(buf, pos, _VERSIONS["TH1"])
    for _ in range(4):  # TNamed, TAttLine, TAttFill, TAttMarker
        pos = _skip(buf, pos)
    (n_cells,) = _INT.unpack_from(buf, pos)
    (nx, _, _), pos = _axis(buf, pos + 4)
    y_bins, pos = _axis(buf, pos)
    pos = _skip(buf, pos)  # fZaxis
    pos += 2 + 2 + 8 * 8  # fBarOffset, fBarWidth, fEntries .. fNormFactor
    (n_contour,) = _INT.unpack_from(buf, pos)
    pos += 4 + 8 * n_contour
    (n_sumw2,) = _INT.unpack_from(buf, pos)
    sumw2 = np.frombuffer(buf, ">f8", n_sumw2, pos + 4) if n_sumw2 else None
    if th1_end + 4 * 8 != th2_end:  # TH2: fScalefactor, fTsumwy, fTsumwy2, fTsumwxy
        raise _Unexpected
    (n_values,) = _INT.unpack_from(buf, th2_end)
    width = np.dtype(dtype).itemsize
    shape = (y_bins[0] + 2, nx + 2)
    if n_values != n_cells or n_values != shape[0] * shape[1] or th2_end + 4 + width * n_values != th2x_end:
        raise _Unexpected
    if sumw2 is not None and n_sumw2 != n_values:
        raise _Unexpected
    values = np.frombuffer(buf, dtype, n_values, th2_end + 4).astype(np.float64).reshape(shape).T
    if sumw2 is not None:
        sumw2 = sumw2.astype(np.float64).reshape(shape).T
    return Map2D(values, sumw2, y_bins)
