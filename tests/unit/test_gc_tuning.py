"""The server's garbage-collector tuning: what ``SHIPYARD_GC_THRESHOLD`` may say, and that
the tuning holds exactly while at least one app's lifespan is open."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shipyard.errors import UserInputError
from shipyard.server.processes.gc_tuning import (
    DEFAULT_THRESHOLD,
    THRESHOLD_ENV,
    threshold_from,
    tuned_gc,
)


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DEFAULT_THRESHOLD),
        ("off", None),
        (" OFF ", None),
        ("1000", (1000, *DEFAULT_THRESHOLD[1:])),
        ("700,10,10", (700, 10, 10)),
        ("2000, 0, 5", (2000, 0, 5)),
    ],
)
def test_the_variable_names_thresholds_or_off(
    text: str, expected: tuple[int, int, int] | None
) -> None:
    assert threshold_from({THRESHOLD_ENV: text}) == expected


def test_unset_means_the_default() -> None:
    assert threshold_from({}) == DEFAULT_THRESHOLD


@pytest.mark.parametrize("bad", ["0", "-5", "many", "1,2", "1,2,3,4", "1.5", "0,10,10", "7,,7"])
def test_a_bad_value_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(UserInputError) as refused:
        threshold_from({THRESHOLD_ENV: bad})
    assert THRESHOLD_ENV in str(refused.value)
    assert repr(bad.strip()) in str(refused.value)


def test_the_tuning_holds_while_any_lifespan_is_open() -> None:
    gc.set_threshold(700, 10, 10)
    with tuned_gc({THRESHOLD_ENV: "4000,7,9"}):
        assert gc.get_threshold() == (4000, 7, 9)
        assert gc.get_freeze_count() > 0
        with tuned_gc({THRESHOLD_ENV: "4000,7,9"}):  # a second app in the same process
            pass
        assert gc.get_threshold() == (4000, 7, 9)  # still held by the first
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_off_leaves_the_collector_alone() -> None:
    gc.set_threshold(700, 10, 10)
    with tuned_gc({THRESHOLD_ENV: "off"}):
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0
