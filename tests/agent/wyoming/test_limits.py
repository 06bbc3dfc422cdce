"""The Wyoming door's cap: what it asks for, under the shared rule of ``agent.limits``."""

from __future__ import annotations

import resource

import pytest

from agent.limits import connection_cap
from agent.wyoming.limits import MAX_CONNECTIONS


@pytest.mark.parametrize(("soft", "cap"), [(1024, MAX_CONNECTIONS), (8 * MAX_CONNECTIONS - 1, MAX_CONNECTIONS - 1),
                                           (256, 32), (resource.RLIM_INFINITY, MAX_CONNECTIONS)])
def test_the_door_asks_for_64_and_gets_at_most_an_eighth_of_the_descriptors(soft: int, cap: int) -> None:
    assert MAX_CONNECTIONS == 64
    assert connection_cap(MAX_CONNECTIONS, soft) == cap
