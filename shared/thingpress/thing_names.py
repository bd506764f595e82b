"""Thing names from a template (``THINGPRESS_THING_NAME_TEMPLATE``), the one place a thing is named.

The provider names every accepted certificate's thing with :meth:`ThingNameTemplate.render`;
the stack checks the template at synth with :func:`template_problem`. Placeholders:

==================  ===============================================================  =========
placeholder         value                                                            at most
==================  ===============================================================  =========
``{prefix}``        the environment's prefix (``THINGPRESS_THING_PREFIX``)           its length
``{vendor}``        the vendor (``microchip``, ``infineon``, ``espressif``,          9
                    ``generated``)
``{name}``          the vendor's thing name for the device (Microchip uniqueId,      64
                    Espressif MAC, Infineon / generated certificate CN)
``{serial}``        the certificate's serial number, lowercase hex                   40
``{fingerprint}``   the certificate id (SHA-256 of its DER, lowercase hex)           64
==================  ===============================================================  =========

The default, ``{prefix}{name}``, gives today's names. A template needs at least one of
``{name}``, ``{serial}``, ``{fingerprint}`` (else every device gets the same thing); its
literal text may only hold thing-name characters (letters, digits, ``:``, ``_``, ``-``);
the longest name it can give must fit IoT's 128 characters (CreateThing, AWS IoT API
reference: ``thingName`` 1-128 of ``[a-zA-Z0-9:_-]+``). A rendered name that still
breaks the rule (a vendor name with other characters) refuses the entry, naming it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from cryptography import x509

from thingpress import patterns
from thingpress.errors import Refused

SETTING = "THINGPRESS_THING_NAME_TEMPLATE"
DEFAULT_TEMPLATE = "{prefix}{name}"
#: placeholder -> the longest value it can have (``prefix``: the prefix's own length, added by the caller).
PLACEHOLDER_MAX = {"prefix": 0, "vendor": 9, "name": 64, "serial": 40, "fingerprint": 64}
#: a template must name the device with one of these.
UNIQUE_PLACEHOLDERS = ("name", "serial", "fingerprint")


def _fields(template: str) -> tuple[list[str], str]:
    """(placeholders in order, literal text); ValueError for a malformed template or a conversion/spec."""
    names, literal = [], []
    for text, name, spec, conversion in string.Formatter().parse(template):
        literal.append(text)
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: "
                             "placeholders take no conversion or format")
        names.append(name)
    return names, "".join(literal)


def template_problem(template: str, prefix: str) -> str | None:
    """Why ``template`` cannot name things with ``prefix``, or None (the synth check)."""
    try:
        names, literal = _fields(template)
    except ValueError as exc:
        return f"{template!r} is not a template: {exc}"
    unknown = sorted(set(names) - set(PLACEHOLDER_MAX))
    if unknown:
        return (f"{template!r}: unknown placeholder {', '.join('{' + n + '}' for n in unknown)} "
                f"(known: {', '.join('{' + n + '}' for n in PLACEHOLDER_MAX)})")
    if not set(names) & set(UNIQUE_PLACEHOLDERS):
        return (f"{template!r} names every device alike: use {{name}}, {{serial}} or {{fingerprint}}")
    bad = sorted({c for c in literal if not patterns.THING_NAME_CHAR.fullmatch(c)})
    if bad:
        return (f"{template!r}: {''.join(bad)!r} cannot be in an IoT thing name "
                "(letters, digits, ':', '_', '-' only)")
    longest = len(literal) + sum(len(prefix) if n == "prefix" else PLACEHOLDER_MAX[n] for n in names)
    if longest > patterns.THING_NAME_MAX:
        return (f"{template!r} can give {longest}-character thing names (prefix {prefix!r}), "
                f"over IoT's {patterns.THING_NAME_MAX}")
    return None


class ThingNameError(Refused, ValueError):
    """A rendered thing name IoT would refuse (the entry is refused with this reason)."""


class ThingNameTemplate:
    """A checked template with the environment's prefix (ValueError naming the setting if it is wrong)."""

    def __init__(self, template: str = DEFAULT_TEMPLATE, prefix: str = ""):
        found = template_problem(template, prefix)
        if found:
            raise ValueError(f"{SETTING}: {found}")
        self.template, self.prefix = template, prefix
        #: the template's placeholders, in order.
        self.placeholders = tuple(_fields(template)[0])
        self._needs_serial = "serial" in self.placeholders

    def render(self, *, vendor: str, name: str, fingerprint: str, certificate_pem: str = "") -> str:
        """The thing name of one device; :class:`ThingNameError` if it is no valid IoT thing name."""
        values: Mapping[str, str] = {
            "prefix": self.prefix, "vendor": vendor, "name": name, "fingerprint": fingerprint,
            "serial": (format(x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number, "x")
                       if self._needs_serial else ""),
        }
        rendered = self.template.format_map(values)
        if not patterns.THING_NAME.fullmatch(rendered):
            raise ThingNameError(f"thing name {rendered!r} ({SETTING} {self.template!r}) is not a valid IoT "
                                 f"thing name (1-{patterns.THING_NAME_MAX} of letters, digits, ':', '_', '-')")
        return rendered
