"""The AWS provider's bindings are imported by submodule (stacks.bindings): the stack loads the provider's
assembly and the resources it names, not the ~1,500 submodules the package root would import, and
synthesizes the same JSON (test_snapshot.py)."""

from __future__ import annotations

import sys

from stacks.bindings import PROVIDER, by_submodule


def test_the_stack_imports_only_the_provider_resources_it_names(synth):
    loaded = {name for name in sys.modules if name.startswith(PROVIDER + ".")}

    assert {f"{PROVIDER}._jsii", f"{PROVIDER}.dynamodb_table", f"{PROVIDER}.iot_thing_type"} <= loaded
    assert f"{PROVIDER}.lexv2_models_intent" not in loaded
    assert len(loaded) < 100  # the package root imports 1,500 and more
    assert not hasattr(sys.modules[PROVIDER], "check_type")  # the root's __init__ did not run


def test_putting_the_root_in_place_again_changes_nothing(synth):
    root = sys.modules[PROVIDER]
    by_submodule()
    assert sys.modules[PROVIDER] is root
