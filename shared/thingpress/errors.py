"""The thingpress error family: one root, one refusal-with-reason.

* ``ThingpressError`` -- the root of every error thingpress raises on purpose.
* ``Refused`` -- something is refused for a reason that will not change on retry;
  ``reason`` is one line naming what and why (it is what the audit trail and the
  logs show). Each module names its own kind of refusal as a subclass, so callers
  catch exactly the refusals they handle, but the reason is defined here once:

  =============================================  ========================================
  ``records.ManifestError``                      a file is not a readable manifest
  ``certs.CertificateError``                     bytes are not one X.509 certificate
  ``messages.MessageError``                      not a valid import message
  ``importer.Rejected``                          an import message is rejected
  ``provider.queue_messages.UnreadableMessage``  not a manifest queue message
  ``provider.sending.MessageTooLarge``           an import message over SQS's limit
  ``thing_names.ThingNameError``                 a templated thing name IoT would refuse
  ``vendors.microchip_signers.SignerFileError``          not a Microchip signer certificate file
  =============================================  ========================================

Failures worth a retry are ``ThingpressError``s that are not refusals
(``provider.failures.ProviderError``, ``importer.RetryLater``,
``throttle.DeadlineExceeded``);
``settings.SettingsError`` is a deployment mistake.
"""

from __future__ import annotations


class ThingpressError(Exception):
    """Root of the errors thingpress raises on purpose."""


class Refused(ThingpressError):
    """Refused for good; ``reason`` (also the message) says what and why, in one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
