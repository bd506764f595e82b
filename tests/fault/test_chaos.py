"""Chaos on the local deployment (thingpress_cli.harness.chaos, ``make chaos``) with its short default.

Several manifests import at once while runner workers in an invocation are SIGKILLed
and the emulator injects faults and transaction conflicts; afterwards every certificate
is in exactly one terminal state and in IoT, none twice, no manifest is stuck, and no
manifest ever had two provider invocations at work at once.
"""

from __future__ import annotations

from thingpress_cli.harness import chaos, chaos_result


def test_chaos_short_default_loses_nothing(deployment, tmp_path, emulator_to_itself):  # faults, conflicts
    # a killed provider's message back in 15 s, not the deployed 90 s, and its lease over after 20 s, not
    # the deployed 60 s (both restored after)
    settings = chaos_result.Settings(manifest_visibility_seconds=15, provider_timeout_seconds=20)

    result = chaos.run(deployment, settings, tmp_path)

    print("\n".join(result.notes))
    print(result.line())
    assert result.effective >= chaos_result.MIN_KILLS and result.faults > 0 and result.conflicts > 0, result.line()
    assert (result.manifests, result.certificates) == (chaos_result.DEFAULT_MANIFESTS,
                                                          chaos_result.DEFAULT_CERTIFICATES)
    assert result.chains == 1, result.line()  # one live chain per manifest (thingpress.provider)
    assert result.line().endswith("lost 0, duplicated 0, failed 0, stalled 0"), (result.line(), result.notes)
