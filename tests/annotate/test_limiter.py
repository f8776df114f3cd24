import asyncio

from dp_cli.annotate.limiter import AdaptiveLimiter


def test_aimd_cuts_once_per_window_and_grows_back():
    lim = AdaptiveLimiter(16, cooldown=10.0)
    lim.on_rate_limited()
    lim.on_rate_limited()  # same window: one burst of 429s is one signal
    assert lim.limit == 16 * 0.7 and lim.cuts == 1
    for _ in range(200):
        lim.on_success()
    assert lim.limit == 16  # additive increase, capped at the maximum
    lim.on_remaining(3)
    assert lim.limit == 3
    lim.on_remaining(0)
    assert lim.limit == 1  # never below the minimum


def test_never_more_holders_than_the_limit():
    lim = AdaptiveLimiter(5)
    peak = 0

    async def job(i):
        nonlocal peak
        async with lim:
            peak = max(peak, lim.in_flight)
            if i == 10:
                lim.limit = 2  # shrink while busy
            await asyncio.sleep(0.001)

    async def main():
        await asyncio.gather(*(job(i) for i in range(60)))

    asyncio.run(main())
    assert peak == 5 and lim.in_flight == 0
