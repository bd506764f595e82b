"""The results writer: a COMPLETE manifest's results files (``thingpress.results``), streamed and written once.

Streamed, bounded memory
------------------------
The rows are read a query page at a time (DynamoDB's pages of up to 1 MB, strongly
consistent: the last outcome was written just before completion) and each line goes into
the upload of its file at once. An upload holds at most one part (``part_size``, 8 MiB:
above S3's 5 MiB minimum for every part but the last) before sending it with
``UploadPart``; a file that stays under one part is sent with one ``PutObject``. So the
writer holds one page of rows and two part buffers, whatever the manifest's size (a
million lines of about 280 bytes are about 34 parts).

Time: decoding a row and encoding its line take about 37 µs of one core (measured: 27,000
rows a second, botocore's own parsing of the pages not included), so a million rows are
about a minute of CPU, two to four at the function's 1024 MB (about 0.6 vCPU) with the
parsing, and some 400 pages of 1 MB to query: minutes, under the 900 s timeout. A run that
does time out starts again from the top on the message's next delivery (nothing is resumed;
nothing half-written is visible: an unfinished multipart upload is no object).

Written once
------------
Both objects are created with ``If-None-Match: *`` (``PutObject`` and
``CompleteMultipartUpload``): S3 refuses (412 ``PreconditionFailed``) to create an object
that exists, so of two writers racing on a redelivered event one creates each file and the
other's write changes nothing (its multipart upload is aborted), and a writer that died
after writing finds its files there on the retry. (S3 answers 409 ``ConditionalRequestConflict``
to a conditional write racing another on the same key: that error is raised, the message
is retried, and the retry finds the object.) The files are what the audit rows said when
they were first written; a later change of a row (a FAILED outcome resolved by a DLQ
redrive, a rollback) is in the table and ``thingpress report``, not in the files. After
both writes the summary records ``results`` (``{"results_key", "errors_key", "lines",
"errors"}``: lines of each file) with a conditional update (``AuditTable.note_results``);
a writer that finds it there reads and writes nothing.

Nothing here names a KMS key: the bucket's default encryption (SSE-KMS with the deployment
key, bucket key on) encrypts both objects, where ``aws:kms`` without a key id would pick the
AWS managed key instead.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from thingpress.audit.states import COMPLETE, FAILED, REJECTED
from thingpress.audit.table import AuditTable
from thingpress.results.keys import CONTENT_TYPE, noted_results, result_line, results_keys

#: the statuses whose lines go to errors.jsonl too: every entry not IMPORTED or ALREADY_PRESENT.
ERROR_STATUSES = (REJECTED, FAILED)
#: bytes of a multipart upload's part: S3 requires at least 5 MiB for every part but the last.
PART_SIZE = 8 * 1024 * 1024
#: S3's answer to a conditional write whose condition failed (the object exists).
PRECONDITION_FAILED = "PreconditionFailed"

logger = Logger(service="thingpress")


class StreamedObject:
    """One S3 object written as its lines come, holding at most one part in memory.

    Under one part in all: one ``PutObject`` at :meth:`finish`. Otherwise a multipart
    upload, a part sent whenever ``part_size`` bytes are buffered. Either write is
    conditional on no object existing (``IfNoneMatch="*"``); :meth:`finish` returns False
    when one did (nothing written, the upload aborted).
    """

    def __init__(self, s3: Any, bucket: str, key: str, part_size: int = PART_SIZE):
        self.s3, self.bucket, self.key, self.part_size = s3, bucket, key, part_size
        self.lines = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, line: bytes) -> None:
        self._buffer += line
        self.lines += 1
        if len(self._buffer) >= self.part_size:
            self._send_part()

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                              ContentType=CONTENT_TYPE)["UploadId"]
        number = len(self._parts) + 1
        answer = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number,
                                     Body=bytes(self._buffer))
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer.clear()

    def finish(self) -> bool:
        """Write what is left and create the object; False when it existed already (nothing written)."""
        try:
            if self._upload_id is None:
                self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                                   ContentType=CONTENT_TYPE, IfNoneMatch="*")
            else:
                if self._buffer:
                    self._send_part()
                self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                                  MultipartUpload={"Parts": self._parts}, IfNoneMatch="*")
                self._upload_id = None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != PRECONDITION_FAILED:
                raise
            self.abort()
            return False
        finally:
            self._buffer.clear()
        return True

    def abort(self) -> None:
        """Abort the multipart upload, if one is open (best effort: the bucket's lifecycle rule aborts
        what is left after a day)."""
        if self._upload_id is None:
            return
        upload, self._upload_id = self._upload_id, None
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload)
        except ClientError as exc:
            logger.warning("multipart upload not aborted", extra={"key": self.key, "error": str(exc)})


class ResultsWriter:
    """Writes a COMPLETE manifest's results files once (module docstring) and notes them on its summary."""

    def __init__(self, s3: Any, audit: AuditTable, bucket: str, *, part_size: int = PART_SIZE,
                 page_size: int | None = None):
        self.s3, self.audit, self.bucket = s3, audit, bucket
        self.part_size = part_size
        #: audit rows per query page; None: DynamoDB's own pages of up to 1 MB.
        self.page_size = page_size

    def write(self, mid: str) -> dict[str, Any] | None:
        """The results of manifest ``mid`` as noted on its summary (written now, or found written).

        None, and nothing written, when the manifest is unknown or not COMPLETE (a completion
        event always follows COMPLETE: such a message is not one to act on).
        """
        summary = self.audit.get_summary(mid)
        if summary is None or summary.get("state") != COMPLETE:
            logger.warning("no results written: the manifest is not COMPLETE",
                           extra={"manifest_id": mid, "state": (summary or {}).get("state")})
            return None
        noted = noted_results(summary)
        if noted:
            return noted
        keys = results_keys(mid)
        results = StreamedObject(self.s3, self.bucket, keys["results_key"], self.part_size)
        errors = StreamedObject(self.s3, self.bucket, keys["errors_key"], self.part_size)
        try:
            for row in self.audit.iter_entries(mid, page_size=self.page_size, consistent=True):
                line = result_line(row)
                results.write(line)
                if row.get("status") in ERROR_STATUSES:
                    errors.write(line)
            written = {keys["results_key"]: results.finish(), keys["errors_key"]: errors.finish()}
        except BaseException:
            results.abort()
            errors.abort()
            raise
        record = {**keys, "lines": results.lines, "errors": errors.lines}
        self.audit.note_results(mid, record)
        logger.info("results written", extra={"manifest_id": mid, **record,
                                               "found_existing": [k for k, new in written.items() if not new]})
        return record
