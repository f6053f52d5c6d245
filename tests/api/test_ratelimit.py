from __future__ import annotations

from stadtpuls.api.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one token a second
    assert [limiter.check("a") for _ in range(60)] == [0.0] * 60
    wait = limiter.check("a")
    assert 0.9 < wait <= 1.0
    clock.t += 1.0
    assert limiter.check("a") == 0.0
    assert limiter.check("b") == 0.0  # clients are independent


def test_zero_turns_limiting_off() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.check("a") == 0.0 for _ in range(10_000))
