"""Rules common to every vendor, applied to the parser's entry stream, and the tally.

``scan(entries)`` is a generator: it yields ``Scanned(entry, duplicate_of)`` for
every entry, in order, so a provider can stream a manifest of any length:

* a ``Certificate`` whose thing name breaks IoT's rules becomes a ``Refusal``
  (parsers already check; this keeps the rule in force for any parser);
* a ``Certificate`` whose fingerprint was already seen earlier in the same
  manifest is a duplicate: ``duplicate_of`` is the position of the first one.
  Duplicates are counted, not refused: the certificate is imported once.

Memory: ``scan`` keeps one 32-byte digest and one position per distinct
certificate, never the certificates (about 120 bytes each: ~12 MiB per 100,000).

``Tally`` counts what a scan saw: ``entries == accepted + duplicates + rejected``.
``thingpress inspect`` prints it and the provider records the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from thingpress import certs
from thingpress.records import Certificate, Entry, Refusal


@dataclass(frozen=True, slots=True)
class Scanned:
    entry: Entry
    #: position of the first entry with the same certificate, or None.
    duplicate_of: int | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


def scan(entries: Iterable[Entry], seen: dict[bytes, int] | None = None) -> Iterator[Scanned]:
    """Apply the common rules to ``entries``.

    ``seen`` (fingerprint digest -> first position) may be passed in to share the
    duplicate memory with the caller, e.g. to resume a manifest part-way through.
    """
    first: dict[bytes, int] = {} if seen is None else seen
    for entry in entries:
        entry = checked(entry)
        if isinstance(entry, Certificate):
            digest = bytes.fromhex(entry.fingerprint)
            earlier = first.get(digest)
            if earlier is not None:
                yield Scanned(entry, earlier)
                continue
            first[digest] = entry.position
        yield Scanned(entry)


def checked(entry: Entry) -> Entry:
    """``entry``, or its refusal when it breaks a rule common to every vendor (IoT's thing-name rules)."""
    if isinstance(entry, Certificate):
        problem = certs.thing_name_problem(entry.thing_name)
        if problem is not None:
            return Refusal(entry.position, f"entry {entry.position}: {problem}", entry.thing_name or None,
                           entry.fingerprint, kind="thing_name")
    return entry


def note_for(entries: int, duplicates: int, rejected: int, no_certificates: int) -> str | None:
    """A one-line explanation when a manifest with these counts imports nothing, else None."""
    if entries == 0:
        return "the manifest holds no entries: nothing to import"
    if no_certificates == entries:
        return (f"signed manifest holds no device certificates: all {entries} entries carry none, "
                "nothing to import")
    if entries - duplicates - rejected == 0 and duplicates == 0:
        return f"every one of the {entries} entries was refused: nothing to import"
    return None


@dataclass
class Tally:
    """What one manifest holds. ``errors`` lists every refusal as ``{position, reason}``.

    ``max_errors`` bounds the list (None: keep all); the counts are always exact.
    """

    entries: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)
    #: refusals by ``Refusal.kind`` ("expired", "signature", "no_certificate", ...).
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    max_errors: int | None = None

    def add(self, scanned: Scanned) -> None:
        self.entries += 1
        entry = scanned.entry
        if isinstance(entry, Refusal):
            self.rejected += 1
            kind = entry.kind or "other"
            self.rejected_by_kind[kind] = self.rejected_by_kind.get(kind, 0) + 1
            if self.max_errors is None or len(self.errors) < self.max_errors:
                self.errors.append({"position": entry.position, "reason": entry.reason})
        elif scanned.is_duplicate:
            self.duplicates += 1
        else:
            self.accepted += 1

    def count(self, scanned: Iterable[Scanned]) -> Tally:
        for item in scanned:
            self.add(item)
        return self

    @property
    def no_certificates(self) -> bool:
        """True when the manifest has entries and none of them carries a certificate."""
        return self.entries > 0 and self.rejected_by_kind.get("no_certificate", 0) == self.entries

    def note(self) -> str | None:
        """A one-line explanation when nothing would be imported, else None."""
        return note_for(self.entries, self.duplicates, self.rejected, self.rejected_by_kind.get("no_certificate", 0))

    def as_dict(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_kind": dict(sorted(self.rejected_by_kind.items())),
            "no_certificates": self.no_certificates,
            "note": self.note(),
            "errors": list(self.errors),
        }
