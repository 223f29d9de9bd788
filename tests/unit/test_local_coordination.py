"""The one-process coordinator: every partition is this process's from start to stop, a notice is
handled before `broadcast` returns, and a replay request waits until a lane takes it."""

from __future__ import annotations

from turnout.delivery.coordination import LocalCoordinator, Notice


async def test_owns_every_partition_from_start_until_stop() -> None:
    events: list[str] = []

    async def acquire(p: int) -> None:
        events.append(f"acquire {p}")

    async def release(p: int) -> None:
        events.append(f"release {p}")

    coordinator = LocalCoordinator(3)
    await coordinator.start(acquire, release)
    assert events == ["acquire 0", "acquire 1", "acquire 2"]
    await coordinator.stop()
    assert events[3:] == ["release 0", "release 1", "release 2"]
    await coordinator.stop()  # a second stop has nothing left to release
    assert len(events) == 6


async def test_a_notice_is_handled_before_broadcast_returns() -> None:
    heard: list[Notice] = []

    async def handler(notice: Notice) -> None:
        heard.append(notice)

    coordinator = LocalCoordinator()
    coordinator.on_notice(handler)
    await coordinator.broadcast({"kind": "replay", "connection": "cio"})
    assert heard == [{"kind": "replay", "connection": "cio"}]


async def test_a_replay_request_waits_until_a_lane_takes_it() -> None:
    coordinator = LocalCoordinator()
    await coordinator.request_replay("cio", 0, [3, 1])
    await coordinator.request_replay("cio", 0, [1, 2])  # merged with the pending request
    handed: list[set[int]] = []

    async def gone(ids: set[int]) -> bool:
        return False  # the lane is not here: the request stays

    async def lane(ids: set[int]) -> bool:
        handed.append(ids)
        return True

    assert await coordinator.take_replays("cio", 0, gone) == 0
    assert await coordinator.take_replays("other", 0, lane) == 0
    assert await coordinator.take_replays("cio", 0, lane) == 3
    assert handed == [{1, 2, 3}]
    assert await coordinator.take_replays("cio", 0, lane) == 0  # taken once only
