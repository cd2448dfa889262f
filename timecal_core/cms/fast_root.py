"""Writing the analyzer's histograms as a ROOT file, fast: the 1,002 TH1F of a harvested
file are serialised once through uproot and then patched per histogram in uproot's
*private* writing internals (``uproot.writing._cascade``), ~10x less CPU per file than one
uproot assignment each. It will not read files (:mod:`~timecal_core.cms.readers`) nor define
names or binnings (:mod:`~timecal_core.cms.harvested_layout`).

Gated (:data:`GATE`, :class:`timecal_core.fastpath.FastPath`): on an uproot it was not
tested with, or when the fast path raises anything, uproot's own writer (``uproot.recreate``
and a ``WritableDirectory``'s assignments) writes the file, with identical objects, and one
line says so once (per production: its workers and steps inherit that it was said).
Histograms it does not handle (odd names or contents, a file beyond 2 GB) also go to uproot's
writer, silently. The file is built in memory: nothing is written before it is whole.

Tested with uproot 5.0 to 5.7 (5.0.0 in ``make test-lowest``, 5.7 in ``make test`` and
``make test-latest``). The private names it uses, all of uproot:

- ``uproot.reading._key_format_small``, ``uproot._util.datetime_to_code``,
  ``uproot.writing._cascade.Key.class_version``;
- a ``WritableDirectory``'s ``_cascading`` and, on it, ``_key.location``, ``_freesegments``
  (``allocate(n, dry_run=)``, ``fileheader.end``), ``_data`` (``haskey``, ``add_key``,
  ``num_bytes``, ``allocation``), ``_reallocate_data``, ``_header.modified_on``,
  ``write(sink)``;
- internals without an underscore but not documented: ``WritableFile.sink`` (``write``,
  ``set_file_length``, ``flush``), ``uproot.serialization.string``,
  ``uproot.compression.compress``, ``uproot.const.kStartBigFile``, ``Model.serialize(name=)``;
- the byte layout of a TH1F as ``uproot.writing.identify.to_TH1x`` serialises it (fields
  found by sentinel values: :func:`_template`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..fastpath import FastPath
from .harvested_layout import (ATTR_HIGH, ATTR_LOW, BX_HIGH, BX_LOW, BX_NBINS, HARVESTED_PREFIX,
                               MODES, PARAMS_KEY, RAW_PREFIX, BXHistograms, hist1d_name)

#: The uproot releases the fast writer was tested with, and what runs otherwise.
GATE = FastPath("uproot", "5.0", "5.7", "the fast harvested-file writer", "uproot's own writer",
                "~0.4 s of CPU per file, 10x the fast writer's")


# --------------------------------------------------------------------------- writing
def _axis(name: str, n: int, low: float, high: float):
    from uproot.writing.identify import to_TAxis

    return to_TAxis(name, "", n, low, high)


def _th1f(name: str, title: str, counts: np.ndarray, low: float, high: float, fill_shift: float):
    """TH1F from flow-inclusive counts; fills are assumed at bin centre + fill_shift."""
    from uproot.writing.identify import to_TH1x

    n = len(counts) - 2
    width = (high - low) / n
    centres = low + (np.arange(n) + 0.5) * width + fill_shift
    w = counts[1:-1].astype(np.float64)
    return to_TH1x(
        name, title, counts.astype(np.float32), float(counts.sum()), w.sum(), w.sum(),
        float((w * centres).sum()), float((w * centres**2).sum()),
        counts.astype(np.float64), _axis("xaxis", n, low, high),
    )


def _th2f(name: str, title: str, counts: np.ndarray, xlow: float, xhigh: float, fill_shift: float,
          delays: np.ndarray, step: float):
    """TH2F of x = BX-like value vs y = delay from counts[n_delays, nx + 2] (x flows included)."""
    from uproot.writing.identify import to_TH2x

    nd, nxf = counts.shape
    nx = nxf - 2
    ylow, yhigh = float(delays[0] - step / 2), float(delays[-1] + step / 2)
    full = np.zeros((nd + 2, nxf), dtype=np.float64)  # [iy, ix] incl. y flows (empty)
    full[1:-1, :] = counts
    xc = xlow + (np.arange(nx) + 0.5) * (xhigh - xlow) / nx + fill_shift
    w = counts[:, 1:-1].astype(np.float64)
    sw = w.sum()
    return to_TH2x(
        name, title, full.ravel().astype(np.float32), float(counts.sum()), sw, sw,
        float((w * xc).sum()), float((w * xc**2).sum()),
        float((w * delays[:, None]).sum()), float((w * delays[:, None] ** 2).sum()),
        float((w * xc[None, :] * delays[:, None]).sum()), full.ravel(),
        _axis("xaxis", nx, xlow, xhigh), _axis("yaxis", nd, ylow, yhigh),
    )


def write_histograms(path: Path, hists: BXHistograms, params: dict[str, Any] | None = None,
                     harvested: bool = True, with_1d: bool = True, fast: bool = True,
                     also: Callable[[Any], None] | None = None) -> None:
    """Write the analyzer's histograms in the raw (``Ph2TkBXHist/...``) or harvested
    (``DQMData/Run 1/Ph2TkBXHist/Run summary/...``) layout, plus the parameters.

    ``also(file)`` may add further objects to the open uproot file before it is closed (one
    write instead of reopening it in update mode). ``fast`` writes the 1,002 TH1F through
    :func:`_write_1d_fast` (~50x faster than one uproot assignment each, identical
    objects) where :data:`GATE` allows; histograms it does not handle, and any exception it
    raises, fall back to uproot's own writer (the file is built in memory: nothing is
    written before it is whole).
    """
    if fast and with_1d and GATE.usable():
        try:
            data = _build_file(hists, params, harvested, with_1d, also, fast=True)
        except _FastPathUnavailable:  # histograms it does not handle (odd names, > 2 GB): not a failure
            data = None
        except Exception as exc:  # anything else (another uproot): uproot's own writer, said once
            GATE.failed(exc)
            data = None
        if data is not None:
            _write_bytes(Path(path), data)
            return
    _write_uproot(Path(path), hists, params, harvested, with_1d, also)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def _write_uproot(path: Path, hists: BXHistograms, params, harvested: bool, with_1d: bool, also) -> None:
    import uproot

    with uproot.recreate(path) as f:
        _fill(f, hists, params, harvested, with_1d, also, fast=False)


def _build_file(hists: BXHistograms, params, harvested: bool, with_1d: bool, also, fast: bool) -> bytes:
    """The whole file in memory (one write to disk, no per-object flush)."""
    import io

    import uproot

    class Buffer(io.BytesIO):
        def close(self):  # uproot closes its sink: keep what was written
            self.final = self.getvalue()
            super().close()

    buffer = Buffer()
    f = uproot.recreate(buffer)
    try:
        _fill(f, hists, params, harvested, with_1d, also, fast=fast)
    finally:
        f.close()
    return buffer.final


def _fill(f, hists: BXHistograms, params, harvested: bool, with_1d: bool, also, fast: bool) -> None:
    prefix = HARVESTED_PREFIX if harvested else RAW_PREFIX
    step = hists.offset_step
    hits_true = hists.hits_true()
    one_d = []  # (name, counts) in the order the plain writer adds them
    for mode in MODES:
        counts = getattr(hists, mode.lower())
        attr = getattr(hists, f"attribution_{mode.lower()}")
        f[f"{prefix}/Hist2D/OffsetScan{mode}"] = _th2f(
            f"OffsetScan{mode}", f"BX vs offset ({mode})", counts, BX_LOW, BX_HIGH, -0.5, hists.delays, step)
        f[f"{prefix}/Hist2D/HitsTrueNumberScan{mode}"] = _th2f(
            f"HitsTrueNumberScan{mode}", f"Hits per BX vs offset ({mode})", hits_true, BX_LOW, BX_HIGH,
            -0.5, hists.delays, step)
        f[f"{prefix}/Hist2D/AttributionScan{mode}"] = _th2f(
            f"AttributionScan{mode}", f"BXs fired per hit vs offset ({mode})", attr, ATTR_LOW, ATTR_HIGH,
            0.0, hists.delays, step)
        if with_1d and not fast:
            for i, d in enumerate(hists.delays):
                name = hist1d_name(mode, d)
                f[f"{prefix}/Hist1D/{name}"] = _th1f(name, name, counts[i], BX_LOW, BX_HIGH, -0.5)
        elif with_1d:
            one_d.extend((hist1d_name(mode, d), counts[i]) for i, d in enumerate(hists.delays))
    if one_d:
        _write_1d_fast(f, f"{prefix}/Hist1D", one_d)
    if params is not None:
        f[PARAMS_KEY] = json.dumps(params, sort_keys=True)
    if also is not None:
        also(f)


# --------------------------------------------------------------------------- fast TH1F
class _FastPathUnavailable(Exception):
    """Histograms the fast writer does not handle (an odd name or content, a file beyond
    2 GB): the caller writes them with uproot's own writer, and nothing is said. Anything
    that is uproot's doing (a template that does not look as expected, a missing name) is
    another exception, said once (:meth:`FastPath.failed`)."""


# Sentinels put into the template TH1F so that each patched field is found by value.
_STAT_SENTINELS = (8_388_609.125, 8_388_611.375, 8_388_613.625, 8_388_617.875, 8_388_619.0625)
_CONTENT_SENTINEL = (np.arange(BX_NBINS + 2) + 3_000_001.5).astype(np.float64)
_TEMPLATES: dict[int, tuple] = {}  # name length -> (bytes, name offsets, stat offsets, ...)


def _template(name: str) -> tuple:
    """Serialise one TH1F of this name length with sentinel values and find where the name,
    the title, the five statistics and both arrays sit in its bytes."""
    cached = _TEMPLATES.get(len(name))
    if cached is not None:
        return cached
    from uproot.writing.identify import to_TH1x

    sentinel = "\x01" * len(name)
    contents = _CONTENT_SENTINEL.astype(np.float32)
    if not np.array_equal(contents.astype(np.float64), _CONTENT_SENTINEL):
        raise RuntimeError("the TH1F template's sentinel is not representable")
    hist = to_TH1x(sentinel, sentinel, contents, *_STAT_SENTINELS, _CONTENT_SENTINEL,
                   _axis("xaxis", BX_NBINS, BX_LOW, BX_HIGH))
    data = hist.serialize(name=sentinel)

    def where(needle: bytes, expected: int) -> list[int]:
        found, start = [], 0
        while (i := data.find(needle, start)) >= 0:
            found.append(i)
            start = i + 1
        if len(found) != expected:
            raise RuntimeError(f"uproot's TH1F serialisation changed: a template field found {len(found)} times")
        return found

    name_at = where(sentinel.encode(), 2)  # fName, fTitle
    stats_at = [where(struct.pack(">d", v), 1)[0] for v in _STAT_SENTINELS]
    contents_at = where(contents.astype(">f4").tobytes(), 1)[0]
    sumw2_at = where(_CONTENT_SENTINEL.astype(">f8").tobytes(), 1)[0]
    cached = (data, name_at, stats_at, contents_at, sumw2_at)
    _TEMPLATES[len(name)] = cached
    return cached


def prepare_fast_writer() -> None:
    """Build the TH1F templates of the usual name lengths now (a warm step server calls this
    once, so that the tasks it forks inherit them)."""
    if not GATE.tested():  # the tasks decide, and say it in their logs
        return
    for delay in (0.0, 10.0, 100.0):
        for mode in MODES:
            try:
                _template(hist1d_name(mode, delay))
            except Exception:  # the task that writes will find out, and say it
                return


def _th1f_payloads(names: list[str], counts: np.ndarray) -> list[bytes]:
    """The serialised TH1F of :func:`_th1f` (title = name, fill shift -0.5) for each row of
    ``counts`` [n, 13], by patching a template: identical bytes, without building an uproot
    model per histogram.

    The statistics are computed for all rows at once; with integer counts and half-integer
    bin centres every product and partial sum is exact in float64, so the result does not
    depend on the summation order and equals :func:`_th1f`'s per-row sums bit for bit.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != BX_NBINS + 2 or \
            not np.array_equal(counts, np.round(counts)) or np.abs(counts).max(initial=0) >= 2**24:
        raise _FastPathUnavailable("unusual histogram contents")
    width = (BX_HIGH - BX_LOW) / BX_NBINS
    centres = BX_LOW + (np.arange(BX_NBINS) + 0.5) * width - 0.5
    w = counts[:, 1:-1].astype(np.float64)
    sumw = w.sum(axis=1)
    stats = np.stack([counts.sum(axis=1).astype(np.float64), sumw, sumw, (w * centres).sum(axis=1),
                      (w * centres**2).sum(axis=1)], axis=1)
    contents = counts.astype(">f4")
    sumw2 = counts.astype(">f8")
    out = []
    pack = struct.pack_into
    for i, name in enumerate(names):
        raw = name.encode()
        if len(raw) != len(name) or len(name) >= 255:
            raise _FastPathUnavailable("unusual histogram name")
        data, name_at, stats_at, contents_at, sumw2_at = _template(name)
        buf = bytearray(data)
        for at in name_at:
            buf[at:at + len(raw)] = raw
        for at, value in zip(stats_at, stats[i].tolist()):
            pack(">d", buf, at, value)
        buf[contents_at:contents_at + 4 * (BX_NBINS + 2)] = contents[i].tobytes()
        buf[sumw2_at:sumw2_at + 8 * (BX_NBINS + 2)] = sumw2[i].tobytes()
        out.append(bytes(buf))
    return out


class _Label:
    __slots__ = ("string",)

    def __init__(self, string: str):
        self.string = string


class _SerialisedKey:
    """A TKey header already serialised, as the directory's key list holds it (it only
    needs the name, class, cycle, size and bytes of each key)."""

    __slots__ = ("_bytes", "name", "classname", "cycle")

    def __init__(self, header: bytes, name: str, classname: str, cycle: int):
        self._bytes, self.name, self.classname, self.cycle = header, _Label(name), _Label(classname), cycle

    @property
    def allocation(self) -> int:
        return len(self._bytes)

    num_bytes = allocation

    def serialize(self) -> bytes:
        return self._bytes

    def copy_to(self, location):  # the bytes do not depend on where the key list sits
        return self


def _write_1d_fast(f, directory: str, items: list[tuple[str, np.ndarray]]) -> None:
    """Add many TH1F to one new directory with a single update of its key list.

    uproot's ``f[name] = hist`` rewrites the directory and flushes for every object (~1 ms
    each, 1 s for a harvested file); here the TKeys (ROOT's small-key format, the one uproot
    writes below 2 GB) and payloads are laid out in one allocation and the directory is
    written once. Uses uproot's writing cascade (``uproot.writing._cascade``) for the
    directory itself: a version that changes it makes this raise, and the file is written by
    uproot's own writer (see :func:`write_histograms`).
    """
    import datetime

    import uproot
    from uproot.serialization import string as root_string

    names = [name for name, _ in items]
    raws = _th1f_payloads(names, np.array([counts for _, counts in items]))
    compression = f.compression
    payloads = [uproot.compression.compress(raw, compression) for raw in raws]
    key_format = uproot.reading._key_format_small
    classname = root_string("TH1F")
    strings = [classname + 2 * root_string(name) for name in names]
    key_lengths = [key_format.size + len(s) for s in strings]
    f.mkdir(directory, initial_directory_bytes=sum(key_lengths) + 1024)
    target = f[directory]
    casc = target._cascading
    sink = target.file.sink
    parent = casc._key.location
    total = sum(key_lengths) + sum(len(c) for c in payloads)
    start = casc._freesegments.allocate(total, dry_run=True)
    if start + total >= uproot.const.kStartBigFile or parent >= uproot.const.kStartBigFile:
        raise _FastPathUnavailable("file beyond 2 GB")
    casc._freesegments.allocate(total, dry_run=False)
    datime = uproot._util.datetime_to_code(datetime.datetime.now())
    version = uproot.writing._cascade.Key.class_version
    chunks = []
    location = start
    for name, raw, compressed, text, keylen in zip(names, raws, payloads, strings, key_lengths):
        if casc._data.haskey(name):
            raise _FastPathUnavailable("name already in the directory")
        header = key_format.pack(keylen + len(compressed), version, len(raw), datime, keylen, 1,
                                 location, parent) + text
        chunks.append(header)
        chunks.append(compressed)
        casc._data.add_key(_SerialisedKey(header, name, "TH1F", 1))
        location += keylen + len(compressed)
    if casc._data.num_bytes > casc._data.allocation:  # the key list outgrew its room
        casc._reallocate_data(casc._data.num_bytes + 1024)
    sink.write(start, b"".join(chunks))
    casc._header.modified_on = datetime.datetime.now()
    casc.write(sink)
    sink.set_file_length(casc._freesegments.fileheader.end)
    sink.flush()


# --------------------------------------------------------------------------- reading


def put_named(directory, name: str, value) -> None:
    """Write ``value`` into an uproot ``directory`` under ``name`` taken whole, slashes
    included (the DQM harvest names scalar elements ``<Name>i=7</Name>``; uproot's ``d[name]
    = value`` would make folders of it). Uses uproot's writer internals
    (``uproot.writing.identify.add_to_directory`` and the file's streamer list), like the
    fast writer above: another uproot raises ValueError here, which the caller reports,
    rather than writing a file that misnames them."""
    from uproot.writing import identify

    try:
        streamers: list = []
        identify.add_to_directory(value, name, directory, streamers)
        directory._file._cascading.streamers.update_streamers(directory._file.sink, streamers)
    except AttributeError as exc:
        raise ValueError(f"this uproot cannot write a key named {name!r} ({exc})") from None
