"""The per-URL answer cache of the SensorThings and NGSI-LD routes and the live hub's topics: single flight, stale
answers served while one computation replaces them, errors never kept (pure unit tests, a fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stadtpuls.api import answers
from stadtpuls.api.answers import AnswerCache
from stadtpuls.api.live import Topic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(answers.time, "monotonic", c)
    return c


class Source:
    """Answers 1, 2, 3, ... each after ``gate`` opens (when one is set)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> int:
        self.calls += 1
        n = self.calls
        if self.gate is not None:
            await self.gate.wait()
        return n

    async def topic_compute(self, pool: Any) -> int:
        """The next answer, as a topic computes it (from the hub's pool)."""
        return await self()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_callers_share_one_computation(clock: Clock) -> None:
    async def main() -> None:
        cache: AnswerCache[int] = AnswerCache(ttl=5)
        source = Source()
        source.gate = asyncio.Event()
        waiting = [asyncio.create_task(cache.get("k", source)) for _ in range(20)]
        await asyncio.sleep(0)
        source.gate.set()
        assert await asyncio.gather(*waiting) == [1] * 20
        assert source.calls == 1
        assert await cache.get("k", source) == 1 and source.calls == 1  # kept

    run(main())


def test_a_stale_answer_is_served_while_one_computation_replaces_it(clock: Clock) -> None:
    async def main() -> None:
        cache: AnswerCache[int] = AnswerCache(ttl=5)
        source = Source()
        assert await cache.get("k", source) == 1
        clock.now += 6  # older than ttl, younger than 2 ttl
        source.gate = asyncio.Event()
        assert await cache.get("k", source) == 1  # at once, the old answer
        assert await cache.get("k", source) == 1
        await asyncio.sleep(0)
        assert source.calls == 2  # one computation started, not two
        source.gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert await cache.get("k", source) == 2 and source.calls == 2

    run(main())


def test_an_answer_older_than_twice_the_interval_is_waited_for(clock: Clock) -> None:
    async def main() -> None:
        cache: AnswerCache[int] = AnswerCache(ttl=5)
        source = Source()
        assert await cache.get("k", source) == 1
        clock.now += 10.5
        assert await cache.get("k", source) == 2

    run(main())


def test_errors_are_not_kept_and_reach_every_waiting_caller(clock: Clock) -> None:
    async def main() -> None:
        cache: AnswerCache[int] = AnswerCache(ttl=5)
        calls = 0

        async def failing() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0)
            raise ValueError("bad query")

        results = await asyncio.gather(cache.get("k", failing), cache.get("k", failing), return_exceptions=True)
        assert [type(r) for r in results] == [ValueError, ValueError] and calls == 1
        with pytest.raises(ValueError):
            await cache.get("k", failing)
        assert calls == 2  # computed again: the error was not kept

    run(main())


def test_without_an_interval_every_call_computes_and_the_size_is_bounded(clock: Clock) -> None:
    async def main() -> None:
        off: AnswerCache[int] = AnswerCache(ttl=0)
        source = Source()
        assert [await off.get("k", source) for _ in range(3)] == [1, 2, 3]
        small: AnswerCache[int] = AnswerCache(ttl=5, size=2)
        counted = Source()
        for key in ("a", "b", "c"):
            await small.get(key, counted)
        assert counted.calls == 3
        await small.get("a", counted)  # dropped as the oldest: computed again
        await small.get("c", counted)  # kept
        assert counted.calls == 4

    run(main())


def test_a_topic_serves_its_last_body_while_the_poll_recomputes_it_but_waits_after_a_change(clock: Clock) -> None:
    async def main() -> None:
        source = Source()
        topic = Topic("lots", source.topic_compute, ttl=5)
        assert (await topic.get(None))[1] == 1
        topic.expire()  # the poll: time passed
        assert (await topic.get(None))[1] == 1 and topic.wake.is_set()  # the last body; the refresher is woken
        assert source.calls == 1
        topic.invalidate()  # a NOTIFY: the data changed
        assert (await topic.get(None))[1] == 2  # waited for
        clock.now += 11  # older than twice the interval
        assert (await topic.get(None))[1] == 3
        assert (await topic.get(None))[1] == 3 and source.calls == 3

    run(main())


def test_a_topic_computed_from_another_reads_it_fresh(clock: Clock) -> None:
    async def main() -> None:
        base_source = Source()
        base = Topic("lots", base_source.topic_compute, ttl=5)

        async def derived_compute(pool: Any) -> int:
            return 100 + (await base.get(pool))[1]

        derived = Topic("parking_sites", derived_compute, ttl=5)
        assert (await derived.get(None))[1] == 101
        base.expire()
        derived.expire()
        assert (await derived.get(None))[1] == 101  # served stale to a request
        await derived.refresh(None)  # what the refresher does: the base is recomputed, not read stale
        assert (await derived.get(None))[1] == 102 and base_source.calls == 2

    run(main())
