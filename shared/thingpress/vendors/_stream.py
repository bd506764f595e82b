"""Stream helpers shared by the parsers: any readable binary object -> buffered reader, lines.

Parsers accept anything with ``read(n)`` (a local file, ``io.BytesIO``, a botocore
``StreamingBody``). ``buffered`` gives them a real ``io.BufferedReader`` so that
``io.TextIOWrapper`` and line iteration behave the same for all of them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 64 * 1024


class _RawAdapter(io.RawIOBase):
    """``readinto`` over an object that only has ``read(n)``."""

    def __init__(self, source: BinaryIO):
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        return n


def buffered(stream: BinaryIO) -> io.BufferedIOBase:
    """A buffered binary reader over ``stream`` (returned as is when it already is one)."""
    if isinstance(stream, (io.BufferedReader, io.BytesIO, io.BufferedRandom)):
        return stream
    return io.BufferedReader(_RawAdapter(stream), buffer_size=CHUNK)


def lines(stream: BinaryIO, max_line: int, first: int = 0) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line_number, line, size)`` for every line, without the line end; ``size`` is the
    line's length in bytes, line end included (so callers know the byte offset after it).

    Numbers continue from ``first`` (the lines before where ``stream`` starts). A line
    longer than ``max_line`` bytes is yielded as ``None`` (the caller refuses it) and
    skipped to its end, so one huge line cannot exhaust memory.
    """
    reader = buffered(stream)
    number = first
    while True:
        line = reader.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith(b"\n"):
            size = len(line)
            while True:  # drain the rest of the oversized line
                rest = reader.readline(CHUNK)
                size += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None, size
            continue
        yield number, line.rstrip(b"\r\n"), len(line)
