"""Is a ROOT file complete, cheaply? A production's rerun asks it of every finished output
(15,000 of them half-way through a 30,000-task grid), so it reads the file's header and its
top directory's key list only, a few hundred bytes, never the objects: a truncated file,
a foreign one, or one without the objects its script writes is not a result. Production
scripts name it as their ``ProductionScript.verify``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_HEADER_SMALL = struct.Struct(">4siiiiiii")  # magic, version, BEGIN, END, SeekFree, NbytesFree, nfree, NbytesName
_HEADER_BIG = struct.Struct(">4siiqqiii")
_DIR_SMALL = struct.Struct(">hIIiiiii")  # version, ctime, mtime, NbytesKeys, NbytesName, SeekDir, SeekParent, SeekKeys
_DIR_BIG = struct.Struct(">hIIiiqqq")
_KEY_SMALL = struct.Struct(">ihiIhhii")  # Nbytes, version, ObjLen, Datime, KeyLen, Cycle, SeekKey, SeekPdir
_KEY_BIG = struct.Struct(">ihiIhhqq")
FIRST_READ = 512


def root_top_keys(path: str | Path) -> list[str]:
    """The names of the objects at the top of a ROOT file, read from its header and its
    top directory's key list only (two small reads, not the objects): what is needed to
    tell a complete file from a truncated or foreign one at the cost of a ``stat``, for the
    15,000 results a rerun of a 30,000-task production looks at. Raises ValueError with a
    short reason when the file is not a complete ROOT file.

    The layout is ROOT's (TFile header, TDirectory and TKey records), as uproot reads it
    (``uproot.reading``); tests/test_nothing_lost.py checks the names against uproot's."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size

        def read(start: int, length: int, what: str) -> bytes:
            data = os.pread(fd, length, start)
            if len(data) < length:
                raise ValueError(f"truncated: {size:,} bytes, the {what} at byte {start:,} is cut short")
            return data

        if size < _HEADER_BIG.size:
            raise ValueError(f"truncated: {size:,} bytes, smaller than a ROOT file header")
        head = os.pread(fd, FIRST_READ, 0)  # the header and, usually, the top directory
        magic, version, begin = struct.unpack_from(">4sii", head)
        if magic != b"root":
            raise ValueError(f"not a ROOT file (it starts with {magic!r})")
        big = version >= 1000000
        _, _, _, end, _, _, _, nbytes_name = (_HEADER_BIG if big else _HEADER_SMALL).unpack_from(head)
        if size < end:
            raise ValueError(f"truncated: {size:,} bytes of the {end:,} its header announces")
        at = begin + nbytes_name
        directory = head[at:at + _DIR_BIG.size]
        if len(directory) < _DIR_BIG.size:
            directory = read(at, _DIR_BIG.size, "top directory")
        dversion = struct.unpack_from(">h", directory)[0]
        fields = (_DIR_BIG if dversion > 1000 else _DIR_SMALL).unpack_from(directory)
        nbytes_keys, seek_keys = fields[3], fields[7]
        if seek_keys == 0:
            return []
        if not 0 < seek_keys < end or nbytes_keys <= 0 or seek_keys + nbytes_keys > end:
            raise ValueError("damaged: its key list lies outside the file")
        data = read(seek_keys, nbytes_keys, "key list")
        key_length = struct.unpack_from(">h", data, 14)[0]
        count = struct.unpack_from(">i", data, key_length)[0]
        names, at = [], key_length + 4
        for _ in range(count):
            kversion = struct.unpack_from(">h", data, at + 4)[0]
            layout = _KEY_BIG if kversion > 1000 else _KEY_SMALL
            nbytes, _, _, _, klen, _, seek, _ = layout.unpack_from(data, at)
            if seek + nbytes > end:
                raise ValueError("damaged: an object lies beyond the end of the file")
            cursor = at + layout.size
            strings = []
            for _ in range(3):  # class name, name, title
                n = data[cursor]
                cursor += 1
                if n == 255:
                    n = struct.unpack_from(">i", data, cursor)[0]
                    cursor += 4
                strings.append(data[cursor:cursor + n].decode("utf-8", "replace"))
                cursor += n
            names.append(strings[1])
            at += klen
        return names
    except (struct.error, IndexError) as exc:
        raise ValueError(f"damaged: its top directory cannot be read ({exc})") from None
    finally:
        os.close(fd)


def root_file_problem(path: str | Path, required: tuple[str, ...] = ()) -> str | None:
    """None when ``path`` is a complete ROOT file holding the ``required`` top-level
    objects; otherwise why not, in a few words (a script's ``verify``)."""
    try:
        names = root_top_keys(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except ValueError as exc:
        return str(exc)
    absent = [n for n in required if n not in names]
    if absent:
        return f"holds no {', '.join(absent)} (its top level: {', '.join(names) or 'nothing'})"
    return None
