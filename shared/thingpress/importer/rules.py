"""The importer's rules that need no AWS: what a thing is given, what a certificate must be, what it is called.

Thing attributes (``thing_attributes``)
---------------------------------------
``CreateThing`` carries the attributes that mark the thing as imported and say who
owns it: ``thingpress_manifest``, ``thingpress_vendor``, ``thingpress_env`` (the
environment suffix) and, for a thing with a type, ``thingpress_queued``. IoT allows
50 attributes on a thing with a thing type but only 3 on a thing without one (AWS IoT
Core quotas, https://docs.aws.amazon.com/general/latest/gr/iot-core.html#limits_iot,
"Thing attributes"; names and values:
https://docs.aws.amazon.com/iot/latest/apireference/API_ThingAttribute.html), so
without a type ``thingpress_queued`` is left out. Every value comes from the message
and the function's settings, so a redelivery sends the identical request and AWS
answers it as a success. ``thingpress rollback`` and ``teardown`` recognise the
things thingpress made by these names (``ATTR_*``).

The certificate (``check_certificate``)
---------------------------------------
Before any IoT call the PEM must be exactly one X.509 certificate whose DER hashes
(SHA-256) to the message's fingerprint, and the thing name must be one IoT accepts;
anything else is a poison message (``Rejected``).

Certificate ARNs (``CertificateArns``)
--------------------------------------
When IoT's answer names no ARN the importer builds
``arn:<partition>:iot:<region>:<account>:cert/<id>`` from the function's own ARN;
there is no ``DescribeCertificate`` (it costs 10 TPS of its own).

Reasons
-------
``THING_EXISTED`` and ``INTERNAL_ERROR`` start the reasons recorded on outcome rows
(``thingpress.importer.results``, "Outcome rule"); ``thingpress reconcile`` reads the
first back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from thingpress.arns import Arn
from thingpress.attributes import MAX_WITH_TYPE, MAX_WITHOUT_TYPE, OWN_PREFIX
from thingpress.importer.results import Rejected
from thingpress.messages import ImportMessage
from thingpress.patterns import THING_NAME

#: thing attribute names (AWS: letters, digits, ``_.,@/:#-``; at most 128 characters), under the
#: prefix no operator may set (``thingpress.attributes``).
ATTR_MANIFEST = f"{OWN_PREFIX}manifest"
ATTR_VENDOR = f"{OWN_PREFIX}vendor"
ATTR_QUEUED = f"{OWN_PREFIX}queued"
ATTR_ENV = f"{OWN_PREFIX}env"

#: reason recorded when the thing existed with other attributes or type.
THING_EXISTED = "THING_EXISTED"
#: reason prefix of a FAILED outcome caused by a programming error (recorded at once, not retried).
INTERNAL_ERROR = "internal error (not retried)"

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class CertificateArns:
    """Builds certificate ARNs without asking IoT (``DescribeCertificate`` costs 10 TPS)."""

    partition: str
    region: str
    account: str

    @classmethod
    def from_function_arn(cls, function_arn: str, region: str | None = None) -> CertificateArns:
        """From the Lambda context's ``invoked_function_arn``: ``arn:<p>:lambda:<region>:<account>:function:<name>``."""
        try:
            arn = Arn.parse(function_arn)
        except ValueError:
            arn = None
        if arn is None or not arn.account:
            raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
        return cls(partition=arn.partition, region=region or arn.region, account=arn.account)

    def certificate(self, certificate_id: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account}:cert/{certificate_id}"


def thing_attributes(message: ImportMessage, environment: str = "", *, typed: bool = False) -> dict[str, str]:
    """Deterministic per message: a redelivery sends the identical ``CreateThing``.

    The thingpress attributes always (manifest, vendor, the environment when set,
    the time queued); without a thing type (``typed``) IoT allows 3 and
    ``thingpress_queued`` is the one left out when the environment takes its place.
    With a thing type also the device facts the message carries
    (``thingpress.attributes``), up to IoT's 50.
    """
    own = {ATTR_MANIFEST: message.manifest_id, ATTR_VENDOR: message.vendor}
    if environment:
        own[ATTR_ENV] = environment
    if typed or len(own) < MAX_WITHOUT_TYPE:
        own[ATTR_QUEUED] = message.queued_at
    if not typed or not message.attributes:
        return own
    extra = sorted((k, v) for k, v in message.attributes.items() if k not in own)
    return {**own, **dict(extra[:MAX_WITH_TYPE - len(own)])}


def check_certificate(message: ImportMessage) -> None:
    """Raise ``Rejected`` unless the PEM is exactly one certificate whose DER hashes to the fingerprint."""
    pem = message.certificate_pem
    count = pem.count(_PEM_BEGIN)
    if count != 1:
        raise Rejected(f"certificate_pem holds {count} PEM certificates, expected exactly 1")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion) as exc:
        raise Rejected(f"certificate_pem is not a PEM X.509 certificate: {exc}") from None
    actual = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    if actual != message.fingerprint:
        raise Rejected(f"fingerprint mismatch: message says {message.fingerprint}, "
                       f"the certificate's DER hashes to {actual}")
    if not THING_NAME.fullmatch(message.thing_name):
        raise Rejected(f"invalid thing name {message.thing_name!r}: AWS IoT needs 1-128 characters "
                       "of letters, digits, ':', '_' or '-'")
