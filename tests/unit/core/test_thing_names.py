"""Thing names from THINGPRESS_THING_NAME_TEMPLATE: the synth check and the rendering (thingpress.thing_names)."""

from __future__ import annotations

import pytest
from cryptography import x509

from thingpress.thing_names import DEFAULT_TEMPLATE, ThingNameError, ThingNameTemplate, template_problem
from thingpress_cli.core.certificates import device_certificates, make_ca

FP = "ab" * 32


@pytest.fixture(scope="module")
def pem() -> str:
    (device,) = device_certificates(make_ca(), 1)
    return device.pem.decode()


def test_the_default_keeps_todays_names():
    assert DEFAULT_TEMPLATE == "{prefix}{name}"
    assert ThingNameTemplate().render(vendor="generated", name="Device-0", fingerprint=FP) == "Device-0"
    assert ThingNameTemplate(prefix="pr7-").render(vendor="espressif", name="a0b1c2d3e4f5",
                                                   fingerprint=FP) == "pr7-a0b1c2d3e4f5"


def test_every_placeholder(pem):
    serial = format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x")
    template = ThingNameTemplate("{prefix}{vendor}_{name}:{serial}", prefix="qa-")
    assert template.render(vendor="microchip", name="0123ee", fingerprint=FP, certificate_pem=pem) == (
        f"qa-microchip_0123ee:{serial}")
    assert ThingNameTemplate("dev-{fingerprint}").render(vendor="generated", name="x", fingerprint=FP) == f"dev-{FP}"


@pytest.mark.parametrize(("template", "prefix", "expected"), [
    ("{prefix}{chip}", "", "unknown placeholder {chip} (known: {prefix}, {vendor}, {name}, {serial}, {fingerprint})"),
    ("{prefix}{vendor}", "", "names every device alike: use {name}, {serial} or {fingerprint}"),
    ("{vendor}/{name}", "", "'/' cannot be in an IoT thing name (letters, digits, ':', '_', '-' only)"),
    ("{name:>70}", "", "is not a template: {name:>70}: placeholders take no conversion or format"),
    ("{name!r}", "", "is not a template: {name!r}: placeholders take no conversion or format"),
    ("{name", "", "is not a template"),
    ("{prefix}{name}-{fingerprint}", "", "can give 129-character thing names (prefix ''), over IoT's 128"),
    ("{prefix}{name}", "p" * 65, "can give 129-character thing names"),
])
def test_a_template_iot_would_refuse_is_refused_with_why(template, prefix, expected):
    found = template_problem(template, prefix)
    assert found is not None and expected in found
    with pytest.raises(ValueError, match="^THINGPRESS_THING_NAME_TEMPLATE: "):
        ThingNameTemplate(template, prefix)


def test_the_longest_name_that_fits_is_accepted():
    assert template_problem("{name}{fingerprint}", "") is None  # 64 + 64 = 128
    assert template_problem("{prefix}{name}", "p" * 64) is None


def test_a_rendered_name_iot_would_refuse_is_a_refusal_naming_it():
    with pytest.raises(ThingNameError) as err:
        ThingNameTemplate("{vendor}-{name}").render(vendor="generated", name="bad name", fingerprint=FP)
    assert err.value.reason == ("thing name 'generated-bad name' (THINGPRESS_THING_NAME_TEMPLATE '{vendor}-{name}') "
                                "is not a valid IoT thing name (1-128 of letters, digits, ':', '_', '-')")
