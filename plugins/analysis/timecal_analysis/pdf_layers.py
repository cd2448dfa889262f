"""A figure's PDF in layers, exactly as ``savefig`` draws it, at about a third of its cost:
the frame's PDF operators, and the fonts, transparency states and images they use, are
recorded once per frame and copied into each file, split where the data and texts go, which
are drawn per figure in their places in the draw order; font subsets are embedded from a
per-process cache; texts are shaped once per process (see PdfFrame, _pdf_file,
_cached_shaping).

This drives matplotlib's PDF backend through its internals, so it is gated (see
:class:`timecal_core.fastpath.FastPath`): with a matplotlib it was not tested with, or when
it raises, the figure is written by ``Figure.savefig`` (the same page, ~3x the CPU). A PDF
is written to a temporary file beside its place and renamed into it: a failed write never
leaves a half-written PDF, nor replaces the previous one.

Tested with matplotlib 3.7 to 3.11 (3.7.0, 3.8, 3.9, 3.10, 3.11.2: ``make test-lowest``,
``make test`` and ``make test-latest``). The private names it uses, all of matplotlib:

- ``matplotlib._text_helpers.layout``: replaced, only while :func:`write` runs, by a
  caching wrapper (:func:`_cached_shaping`; other threads' calls go straight through);
- ``matplotlib.backends.backend_mixed.MixedModeRenderer`` and its ``_vector_renderer``;
- ``matplotlib.backends.backend_pdf.RendererPdf`` (subclassed: ``draw_text``'s signature;
  its ``file``, ``gc`` and ``new_gc``, ``GraphicsContextPdf.finalize``);
- ``matplotlib.backends.backend_pdf.PdfFile`` (subclassed: ``embedTTF``, whose signature is
  ``(filename, characters)`` before 3.10 and ``(filename, subset_index, charmap)`` since),
  its ``newPage``, ``write``, ``output``, ``finalize``, ``close``, ``fh``, ``tell_base``,
  ``xrefTable``, ``reserveObject``, ``recordXref``, the resource methods of
  ``_PDF_RESOURCE_METHODS`` (``_soft_mask_state`` among them) and ``_character_tracker``
  (``track``, ``track_glyph``, ``subset_to_unicode``);
- ``matplotlib.backends.backend_pdf.Op`` and ``Reference``;
- the layout of the objects ``PdfFile`` writes (``N 0 obj``, ``N 0 R``, ``stream``), which
  :class:`PdfObjects` renumbers with a regular expression.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from timecal_core.fastpath import FastPath

#: The gate: matplotlib releases this module was tested with, and what runs otherwise.
GATE = FastPath("matplotlib", "3.7", "3.11", "the layered PDF writer", "matplotlib's savefig", "~3x the CPU per PDF")


def write(
    fig: Figure,
    path: Path,
    dynamic: list[Artist],
    frame_key: tuple[Any, ...],
    frames: dict[tuple[Any, ...], PdfFrame],
    max_frames: int,
) -> None:
    """``fig`` as a PDF at ``path``, as ``fig.savefig(path)`` draws it. ``dynamic`` are the
    artists that change from one figure to the next (the patches, the data, the texts),
    ``frame_key`` says what the rest shows (equal keys, identical frames), ``frames`` keeps
    the recorded frames (at most ``max_frames``). In layers where the gate allows, else (or
    if the layers raise) by ``savefig``."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")

    def frame_of(dpi: float) -> PdfFrame:
        """The frame's recording: kept, or made now (at the figure's dpi, for its images)."""
        key = frame_key + tuple((type(a).__name__, a.get_zorder()) for a in dynamic)
        frame = frames.get(key)
        if frame is None:
            if len(frames) >= max_frames:
                frames.clear()
            frame = frames[key] = PdfFrame.record(fig, dynamic, dpi)
        return frame

    try:
        if GATE.usable():
            try:
                with _cached_shaping():
                    _write_layers(fig, partial, dynamic, frame_of)
                os.replace(partial, path)
                return
            except Exception as exc:  # any failure of the layers: savefig writes this one
                GATE.failed(exc)
        _savefig(fig, partial)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _savefig(fig: Figure, path: Path) -> None:
    """The public path: what ``fig.savefig(path)`` writes, the figure's canvas kept."""
    canvas = fig.canvas
    try:
        fig.savefig(path, format="pdf")
    finally:
        fig.set_canvas(canvas)


def _write_layers(fig: Figure, path: Path, dynamic: list[Artist], frame_of: Callable[[float], PdfFrame]) -> None:
    from matplotlib.backends.backend_pdf import Op

    dpi = fig.dpi
    fig.dpi = 72  # PDF units are points, as print_pdf draws
    try:
        frame = frame_of(dpi)
        file = _pdf_file(path)
        try:
            width, height = fig.get_size_inches()
            file.newPage(width, height)
            renderer = _pdf_renderer(fig, file, dpi)
            if frame.replay_resources(file):
                vector = renderer._vector_renderer
                file.write(frame.segments[0])
                for index, segment in zip(frame.gaps, frame.segments[1:]):
                    file.output(Op.gsave)
                    vector.gc = vector.new_gc()
                    dynamic[index].draw(renderer)
                    file.output(*vector.gc.finalize())
                    file.output(Op.grestore)
                    file.write(segment)
            else:  # never expected: the file's resource names differ from the recording's
                fig.draw(renderer)
                renderer.finalize()
            file.finalize()
        finally:
            file.close()
    finally:
        fig.dpi = dpi


_PDF_RENDERERS: dict[tuple[int, float, float, float], Any] = {}


def _pdf_renderer(fig: Figure, file: Any, dpi: float) -> Any:
    """The renderer ``print_pdf`` draws with (vector, rasterising the artists that ask),
    one per figure and dpi, pointed at each new file: matplotlib caches text measurements
    per renderer, and measuring a text (shaping it) costs about a millisecond."""
    from matplotlib.backends.backend_mixed import MixedModeRenderer

    width, height = fig.get_size_inches()
    key = (id(fig), dpi, width, height)
    renderer = _PDF_RENDERERS.get(key)
    if renderer is None or renderer.figure is not fig:
        renderer = _PDF_RENDERERS[key] = MixedModeRenderer(
            fig, width, height, dpi, _renderer_pdf_class()(file, dpi, height, width)
        )
    vector = renderer._vector_renderer
    vector.file = file
    vector.gc = vector.new_gc()  # the page's initial graphics state
    return renderer


class _Shaping(threading.local):
    size: float | None = None  # the font size of the text our PDF renderer is drawing, else None


_SHAPING = _Shaping()
_SHAPED: dict[tuple[Any, ...], list[Any]] = {}
_RendererPdfCached: Any = None
_PATCH = threading.Lock()
_PATCH_DEPTH = 0
_PATCH_ORIGINAL: Any = None  # matplotlib's layout while ours replaces it


@contextlib.contextmanager
def _cached_shaping() -> Iterator[None]:
    """While it is entered (by any thread), ``matplotlib._text_helpers.layout`` caches the
    shaping of the texts our PDF renderer draws: shaping a string (libraqm) costs about a
    millisecond and the figures of a scan draw the same few strings (tick labels, the mode,
    the fixed parameters) again and again. Only texts :func:`_renderer_pdf_class`'s renderer
    draws use the cache (keyed by font file, size, string and options); any other caller of
    ``layout`` goes straight through. The original is back when the last user leaves."""
    global _PATCH_DEPTH, _PATCH_ORIGINAL
    from matplotlib import _text_helpers

    with _PATCH:
        if _PATCH_DEPTH == 0:
            _PATCH_ORIGINAL = shape = _text_helpers.layout

            def layout(string: str, font: Any, **options: Any) -> Iterator[Any]:
                size = _SHAPING.size
                if size is None:
                    return shape(string, font, **options)
                key = (font.fname, getattr(font, "face_index", 0), size, string, tuple(sorted(options.items())))
                items = _SHAPED.get(key)
                if items is None:
                    if len(_SHAPED) >= 4096:
                        _SHAPED.clear()
                    items = _SHAPED[key] = list(shape(string, font, **options))
                return iter(items)

            layout.__wrapped__ = shape  # type: ignore[attr-defined]
            _text_helpers.layout = layout
        _PATCH_DEPTH += 1
    try:
        yield
    finally:
        with _PATCH:
            _PATCH_DEPTH -= 1
            if _PATCH_DEPTH == 0:
                if getattr(_text_helpers.layout, "__wrapped__", None) is _PATCH_ORIGINAL:
                    _text_helpers.layout = _PATCH_ORIGINAL  # type: ignore[assignment]  # it is that function
                _PATCH_ORIGINAL = None


def _renderer_pdf_class() -> Any:
    """matplotlib's PDF renderer, telling :func:`_cached_shaping` the size of the text it
    is drawing (the texts it draws are shaped once per process)."""
    global _RendererPdfCached
    if _RendererPdfCached is None:
        from matplotlib.backends.backend_pdf import RendererPdf

        class _RendererPdfCached(RendererPdf):  # defined on first use
            def draw_text(  # type: ignore[no-untyped-def]  # RendererPdf's own signature
                self, gc, x, y, s, prop, angle, ismath=False, mtext=None
            ):
                _SHAPING.size = prop.get_size_in_points()
                try:
                    return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
                finally:
                    _SHAPING.size = None

    return _RendererPdfCached


#: The PdfFile methods that hand out resource names (fonts, transparency states, images,
#: markers...) and the character tracker's: what a recorded frame must replay in a new file.
_PDF_RESOURCE_METHODS = (
    "fontName",
    "dviFontName",
    "alphaState",
    "_soft_mask_state",
    "hatchPattern",
    "addGouraudTriangles",
    "imageObject",
    "markerObject",
    "pathCollectionObject",
)
_PDF_TRACKER_METHODS = ("track", "track_glyph")


@dataclass
class PdfFrame:
    """The frame of a figure (axes, ticks, labels, legend, colour bar, CMS label) as PDF
    content-stream bytes, cut where the figure's own artists (patches, data, texts) go,
    plus the resource calls that drawing made, in order.

    A PDF file names its resources in the order they are first asked for (F1, F2... for
    fonts, A1... for transparency, I1... for images; character codes of a Type 3 font in
    the order characters are first used). Replaying the calls first, in a new file, gives
    them the same names and codes as in the recording, so the recorded bytes can be copied
    as they are; what the figure draws in the gaps reuses or adds names. Every segment
    and every gap starts from the page's initial graphics state (saved and restored
    around it), so the draw order, hence the page, is that of a full ``savefig`` (the
    error bands under the ticks, the curves over them, the frame's spines over the curves).
    Each file still embeds its fonts and images itself: each PDF stands alone."""

    segments: list[bytes]  # one more than gaps
    gaps: list[int]  # index into the figure's dynamic artists drawn between two segments
    calls: list[
        tuple[str, str, tuple[Any, ...], dict[str, Any], Any]
    ]  # (owner "file"/"tracker", method, args, kwargs, result)

    @classmethod
    def record(cls, fig: Figure, dynamic: list[Artist], dpi: float) -> PdfFrame:
        from matplotlib.backends.backend_pdf import Op, PdfFile

        file: Any = PdfFile(io.BytesIO())
        width, height = fig.get_size_inches()
        file.newPage(width, height)
        calls: list[tuple[str, str, tuple[Any, ...], dict[str, Any], Any]] = []
        seen: set[Any] = set()

        def recorder(owner: str, target: Any, name: str) -> Callable[..., Any]:
            method = getattr(target, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                result = method(*args, **kwargs)
                try:  # a call repeated with the same arguments changes nothing: replayed once
                    key = (owner, name, args, tuple(kwargs.items()), result)
                    if key in seen:
                        return result
                    seen.add(key)
                except TypeError:  # unhashable arguments (paths, transforms): always replayed
                    pass
                calls.append((owner, name, args, kwargs, result))
                return result

            return call

        for name in _PDF_RESOURCE_METHODS:
            if hasattr(file, name):
                setattr(file, name, recorder("file", file, name))
        tracker = file._character_tracker
        for name in _PDF_TRACKER_METHODS:
            if hasattr(tracker, name):
                setattr(tracker, name, recorder("tracker", tracker, name))
        chunks: list[bytes] = []
        file.write = chunks.append  # the page's content stream, uncompressed
        renderer = _pdf_renderer(fig, file, dpi)
        vector = renderer._vector_renderer
        segments, gaps = [], []

        def gap(index: int) -> Callable[[Any], None]:
            def draw(_renderer: Any) -> None:
                file.output(*vector.gc.finalize())
                file.output(Op.grestore)
                segments.append(b"".join(chunks))
                chunks.clear()
                gaps.append(index)
                file.output(Op.gsave)
                vector.gc = vector.new_gc()  # the page's initial state again

            return draw

        for i, artist in enumerate(dynamic):
            vars(artist)["draw"] = gap(i)  # this artist only, removed below
        try:
            file.output(Op.gsave)
            fig.draw(renderer)
            file.output(*vector.gc.finalize())
            file.output(Op.grestore)
        finally:
            for artist in dynamic:
                vars(artist).pop("draw", None)
        segments.append(b"".join(chunks))
        return cls(segments, gaps, calls)

    def replay_resources(self, file: Any) -> bool:
        """Ask ``file`` (a new page, nothing drawn yet) for the recorded resources; False
        if any name or code came out different (the recorded bytes would not fit)."""
        tracker = file._character_tracker
        for owner, name, args, kwargs, result in self.calls:
            if getattr(file if owner == "file" else tracker, name)(*args, **kwargs) != result:
                return False
        return True


def _pdf_file(path: Path) -> Any:
    """A PdfFile that embeds each font subset from a per-process cache: turning glyph
    outlines into Type 3 procedures (and serialising them) is most of the cost of a small
    PDF once the frame is replayed, and the figures of a scan use the same few subsets."""
    from matplotlib.backends.backend_pdf import PdfFile

    global _PdfFileCached
    if _PdfFileCached is None:

        class _PdfFileCached(PdfFile):  # defined on first use: matplotlib is heavy
            def embedTTF(self, filename: str, *subset: Any) -> Any:  # (subset_index, charmap); (characters) before 3.10
                key: tuple[Any, ...] = (
                    filename,
                    matplotlib.rcParams["pdf.fonttype"],
                    matplotlib.rcParams["pdf.compression"],
                    _frozen(subset),
                )
                tracker = self._character_tracker
                if len(subset) == 2 and isinstance(subset[1], dict) and hasattr(tracker, "subset_to_unicode"):
                    key += tuple(tracker.subset_to_unicode(filename, subset[0], code) for code in sorted(subset[1]))
                objects = _EMBEDDED_FONTS.get(key)
                if objects is None:
                    if len(_EMBEDDED_FONTS) >= 256:
                        _EMBEDDED_FONTS.clear()
                    objects = _EMBEDDED_FONTS[key] = PdfObjects.record(
                        self, lambda: super(_PdfFileCached, self).embedTTF(filename, *subset)
                    )
                    return objects.result
                return objects.write(self)

    return _PdfFileCached(path)


_PdfFileCached: Any = None
_EMBEDDED_FONTS: dict[tuple[Any, ...], PdfObjects] = {}


def _frozen(value: Any) -> Any:
    """A hashable copy of nested dicts, sets and sequences."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass
class PdfObjects:
    """PDF objects as written, to be written again in another file under new numbers:
    each object's bytes after its ``N 0 obj`` line, references ``N 0 R`` renumbered in
    dictionaries and arrays (a stream's data, which may hold any bytes, is copied as is)."""

    ids: list[int]  # the recorded numbers, in reservation order
    bodies: list[tuple[int, bytes, bytes]]  # (id, dictionary or whole body, stream data and end or b"")
    result: Any  # what the writer returned (a Reference)

    @classmethod
    def record(cls, file: Any, make: Callable[[], Any]) -> PdfObjects:
        """Run ``make()``, which reserves and writes whole objects of ``file``; keep them."""
        fh, base = file.fh, file.tell_base
        start = fh.tell()
        first = len(file.xrefTable)
        buffer = io.BytesIO()
        file.fh, file.tell_base = buffer, base - start  # offsets stay those of the real file
        try:
            result = make()
        finally:
            file.fh, file.tell_base = fh, base
        blob = buffer.getvalue()
        fh.write(blob)
        ids = list(range(first, len(file.xrefTable)))
        starts = sorted((file.xrefTable[i][0] - (start - base), i) for i in ids)
        bodies = []
        for (offset, i), (end, _) in zip(starts, starts[1:] + [(len(blob), None)]):
            body = blob[offset:end]
            head = b"%d 0 obj\n" % i
            assert body.startswith(head), (i, body[:20])
            body = body[len(head) :]
            cut = body.find(b"\nstream\n")
            bodies.append((i, body, b"") if cut < 0 else (i, body[:cut], body[cut:]))
        return cls(ids, bodies, result)

    def write(self, file: Any) -> Any:
        from matplotlib.backends.backend_pdf import Reference

        new = {i: file.reserveObject("copied").id for i in self.ids}

        def renumber(match: re.Match[bytes]) -> bytes:
            return b"%d 0 R" % new.get(int(match.group(1)), int(match.group(1)))

        for i, text, data in self.bodies:
            file.recordXref(new[i])
            file.fh.write(b"%d 0 obj\n" % new[i] + _REFERENCE.sub(renumber, text) + data)
        return Reference(new[self.result.id]) if isinstance(self.result, Reference) else self.result


_REFERENCE = re.compile(rb"(?<![\w.])(\d+) 0 R\b")
