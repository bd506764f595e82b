"""One error family: a root error and one refusal-with-reason class (``thingpress.errors``)."""

from __future__ import annotations


def test_every_refusal_is_one_refused_class_with_its_reason_and_every_error_one_root():
    from thingpress import certs, messages, records, settings, throttle
    from thingpress.errors import Refused, ThingpressError
    from thingpress.importer import results
    from thingpress.provider import failures, queue_messages, sending
    from thingpress.vendors import microchip_signers

    refusals = [records.ManifestError, certs.CertificateError, messages.MessageError, results.Rejected,
                queue_messages.UnreadableMessage, sending.MessageTooLarge, microchip_signers.SignerFileError]
    for kind in refusals:
        error = kind("entry 3: why")
        assert isinstance(error, Refused) and error.reason == str(error) == "entry 3: why", kind
        assert "__init__" not in vars(kind), f"{kind.__name__} redefines what Refused defines"
    for kind in (failures.ProviderError, settings.SettingsError, results.RetryLater, throttle.DeadlineExceeded):
        assert issubclass(kind, ThingpressError) and not issubclass(kind, Refused), kind
