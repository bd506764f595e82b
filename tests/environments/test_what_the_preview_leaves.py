"""The preview group's last item, on purpose: its file sorts after the scenario's (``test_two_environments.py``).

pytest-xdist runs a worker's last item only when the whole run ends: it waits for the item after it, to
know which fixtures to tear down. The deployment's chaos tests, on another worker, wait until the
scenario's module is torn down (``tests/conftest.py``: ``_preview_done`` writes the mark,
``emulator_to_itself`` waits for it). When the scenario's last test was its worker's last item, it
did not run before the end, and chaos waited out its 1,200 s: a fresh-clone CI run on 0bef6fe hung
there. This test is that last item instead, and checks the mark the scenario's teardown left.
"""

from __future__ import annotations


def test_the_scenario_marked_itself_done_before_the_last_item_of_its_group(preview_done):
    mark, scenario_ran = preview_done
    assert mark.exists() == scenario_ran
