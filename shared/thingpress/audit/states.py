"""The audit table's vocabulary of states: a certificate row's ``status`` (``STATUSES``, and
``ROLLED_BACK``), a manifest summary's ``state`` (``MANIFEST_STATES``), and the counters that add up."""

from __future__ import annotations

IMPORTED = "IMPORTED"
ALREADY_PRESENT = "ALREADY_PRESENT"
REJECTED = "REJECTED"
FAILED = "FAILED"
STATUSES = (IMPORTED, ALREADY_PRESENT, REJECTED, FAILED)
#: the summary counter each terminal status adds to.
COUNTER = {IMPORTED: "imported", ALREADY_PRESENT: "already_present", REJECTED: "rejected", FAILED: "failed"}

#: a certificate row after ``thingpress rollback``/``teardown`` undid it (``previous_status``
#: keeps the import outcome); also the summary state of a rolled-back manifest. Not an
#: import outcome: the summary counters above keep what the import did.
ROLLED_BACK = "ROLLED_BACK"
#: rollback modes, weakest first: a row rolled back with one mode is done for it and every weaker one.
ROLLBACK_MODES = ("deactivate", "delete")

#: manifest states, in order; REFUSED is terminal for a file refused as a whole.
RECEIVED, PARSING, QUEUED, COMPLETE, REFUSED = "RECEIVED", "PARSING", "QUEUED", "COMPLETE", "REFUSED"
#: set by the watchdog: parsed, but outcomes are missing and no import message is left to
#: bring them. Not terminal: a late outcome that makes the counters add up completes it.
STALLED = "STALLED"
MANIFEST_STATES = (RECEIVED, PARSING, QUEUED, COMPLETE, REFUSED, STALLED)
#: states of a manifest still in progress (the watchdog looks at these only).
UNFINISHED_STATES = (RECEIVED, PARSING, QUEUED)
#: the summary counters that add up to ``entries`` once every entry has its outcome.
OUTCOME_COUNTERS = ("imported", "already_present", "rejected", "failed", "duplicates")
