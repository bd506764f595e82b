"""Reading from a cursor: every vendor that can be entered part-way (``Vendor.read``) yields,
from the cursor after any entry, exactly what a read from the top yields after that entry
(same entries, same reasons, same cursors), reading only the bytes from the cursor on."""

from __future__ import annotations

import io
from datetime import datetime

import factories
import pytest

from thingpress.cursor import Cursor
from thingpress.records import ManifestError
from thingpress.vendors import VENDORS, ParseOptions

NOW = datetime.fromisoformat("2026-06-01T00:00:00+00:00")


def _generated() -> tuple[bytes, ParseOptions]:
    devs = factories.devices(4)
    lines = factories.generated_manifest(devs).splitlines(keepends=True)
    # blank lines (no entry), a bad line, CRLF ends: line numbers and offsets must stay exact
    data = b"".join([lines[0], b"\n", b"  \r\n", b"not*base64\n", lines[1], lines[2].rstrip(b"\n") + b"\r\n",
                     b"\n", lines[3].rstrip(b"\n")])
    return data, ParseOptions(now=NOW)


def _espressif() -> tuple[bytes, ParseOptions]:
    devs = factories.devices(4)
    rows = factories.espressif_rows(devs)
    data = factories.espressif_manifest(rows)
    # a byte-order mark, a blank row, a bad row, a bare-CR line end between rows, non-ASCII text
    bad = b'AABBCCDDEEFF,"n\xc3\xa9",nope\r'
    head, rest = data.split(b"\n", 1)
    return b"\xef\xbb\xbf" + head + b"\n\n" + bad + rest, ParseOptions(now=NOW)


def _microchip() -> tuple[bytes, ParseOptions]:
    signer = factories.microchip_signer()
    data = factories.microchip_manifest_for(factories.devices(4), signer)
    # whitespace and a non-ASCII character between elements: offsets are bytes, not characters
    data = b"\xef\xbb\xbf[ \n" + data.strip()[1:].replace(b"},{", b"} ,\n\t{", 2)
    return data, ParseOptions(now=NOW, microchip_signers=(signer.certificate,))


CASES = {"generated": _generated, "espressif": _espressif, "microchip": _microchip}


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_reading_from_every_cursor_gives_the_rest_of_the_manifest(vendor):
    data, options = CASES[vendor]()
    read = VENDORS[vendor].read
    assert read is not None
    whole = list(read(io.BytesIO(data), options, None))
    assert [e.position for e, _ in whole] == list(range(1, len(whole) + 1))
    assert [e for e, _ in whole] == list(VENDORS[vendor].parse(io.BytesIO(data), options))
    for index, (_, cursor) in enumerate(whole):
        rest = list(read(io.BytesIO(data[cursor.offset:]), options, cursor))
        assert rest == whole[index + 1:], f"from {cursor}"


def test_infineon_cannot_be_entered_part_way():
    assert VENDORS["infineon"].read is None


def test_a_cursor_in_a_generated_manifest_stands_after_its_line():
    devs = factories.devices(2)
    data = factories.generated_manifest(devs)
    (_, first), (_, second) = VENDORS["generated"].read(io.BytesIO(data), ParseOptions(), None)
    assert first == Cursor(1, data.index(b"\n") + 1, 1)
    assert second == Cursor(2, len(data), 2)


def test_a_resumed_espressif_chunk_names_the_file_line_of_a_csv_error():
    rows = factories.espressif_rows(factories.devices(2))
    data = factories.espressif_manifest(rows) + b'AABBCCDDEEFF,x,"' + b"A" * 200_000
    read = VENDORS["espressif"].read
    _, cursor = next(read(io.BytesIO(data), ParseOptions(), None))
    with pytest.raises(ManifestError) as top:
        list(read(io.BytesIO(data), ParseOptions(), None))
    with pytest.raises(ManifestError) as resumed:
        list(read(io.BytesIO(data[cursor.offset:]), ParseOptions(), cursor))
    assert resumed.value.reason == top.value.reason
    lines = data.count(b"\n") + 1
    assert f"after line {lines}:" in top.value.reason
