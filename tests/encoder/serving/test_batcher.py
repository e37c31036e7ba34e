"""MicroBatcher on plain Python functions: coalescing, limits, overload, failure isolation, shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from encoder.serving.batcher import BatcherClosedError, MicroBatcher, QueueFullError


class Recorder:
    """A run_batch that records its calls, can be held on a gate, and fails on the item "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list[str]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, key, items):
        self.gate.wait(timeout=30)
        self.calls.append((key, list(items)))
        if "bad" in items:
            raise ValueError("bad item")
        return [f"{key}:{item}" for item in items]


async def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` on the event loop (generous timeout; never a timing assertion)."""
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_batch_and_get_their_own_results():
    async def main():
        fn = Recorder()
        batcher = MicroBatcher(fn, max_batch_size=6, max_wait_ms=30_000)  # fills up long before the wait ends
        batcher.start()
        results = await asyncio.gather(*(batcher.submit("k", [f"t{i}", f"u{i}"][: 1 + i % 2]) for i in range(4)))
        await batcher.stop()
        return fn, batcher, results

    fn, batcher, results = run(main())
    assert results == [["k:t0"], ["k:t1", "k:u1"], ["k:t2"], ["k:t3", "k:u3"]]
    assert list(batcher.batch_sizes) == [6]  # four requests, one model call
    assert len(fn.calls) == 1


def test_batches_respect_max_size_and_keys_never_mix():
    async def main():
        fn = Recorder()
        batcher = MicroBatcher(fn, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        jobs = [batcher.submit("a" if i % 3 else "b", [str(i)]) for i in range(12)]
        results = await asyncio.gather(*jobs)
        await batcher.stop()
        return fn, results

    fn, results = run(main())
    assert results == [[f"{'a' if i % 3 else 'b'}:{i}"] for i in range(12)]
    assert sorted(int(item) for _, items in fn.calls for item in items) == list(range(12))
    for key, items in fn.calls:
        assert len(items) <= 4
        assert all((int(i) % 3 != 0) == (key == "a") for i in items)


def test_an_oversized_request_runs_alone_in_one_call():
    async def main():
        fn = Recorder()
        batcher = MicroBatcher(fn, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        result = await batcher.submit("k", [str(i) for i in range(7)])
        await batcher.stop()
        return fn, result

    fn, result = run(main())
    assert result == [f"k:{i}" for i in range(7)]
    assert fn.calls == [("k", [str(i) for i in range(7)])]


def test_full_queue_refuses_at_once_and_recovers():
    async def main():
        fn = Recorder()
        fn.gate.clear()  # hold the model thread
        batcher = MicroBatcher(fn, max_batch_size=8, max_wait_ms=0, max_queue=4)
        batcher.start()
        first = asyncio.create_task(batcher.submit("k", ["a", "b", "c"]))
        await wait_until(lambda: batcher.in_flight == 3)
        with pytest.raises(QueueFullError, match="busy"):
            await batcher.submit("k", ["d", "e"])
        with pytest.raises(ValueError, match="never fit"):
            await batcher.submit("k", list("abcdef"))
        fn.gate.set()
        assert await first == ["k:a", "k:b", "k:c"]
        assert await batcher.submit("k", ["d", "e"]) == ["k:d", "k:e"]
        in_flight = batcher.in_flight
        await batcher.stop()
        return in_flight

    assert run(main()) == 0


def test_a_failing_batch_fails_only_the_bad_request():
    async def main():
        fn = Recorder()
        fn.gate.clear()
        batcher = MicroBatcher(fn, max_batch_size=8, max_wait_ms=0)
        batcher.start()
        blocker = asyncio.create_task(batcher.submit("k", ["first"]))
        await wait_until(lambda: batcher.in_flight == 1)
        tasks = [asyncio.create_task(batcher.submit("k", [t])) for t in ("a", "bad", "c")]
        await wait_until(lambda: batcher.in_flight == 4)
        fn.gate.set()
        results = await asyncio.gather(blocker, *tasks, return_exceptions=True)
        sizes = list(batcher.batch_sizes)
        await batcher.stop()
        return results, sizes

    results, sizes = run(main())
    assert results[0] == ["k:first"] and results[1] == ["k:a"] and results[3] == ["k:c"]
    assert isinstance(results[2], ValueError)
    assert sizes == [1, 3, 1, 1, 1]  # the shared batch failed, then each request ran alone


def test_wrong_result_count_is_an_error_not_a_hang():
    async def main():
        batcher = MicroBatcher(lambda key, items: items[:-1], max_wait_ms=0)
        batcher.start()
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            await batcher.submit("k", ["a", "b"])
        await batcher.stop()

    run(main())


def test_cancelled_request_is_dropped_and_stop_fails_the_rest():
    async def main():
        fn = Recorder()
        fn.gate.clear()
        batcher = MicroBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=10)
        batcher.start()
        running = asyncio.create_task(batcher.submit("k", ["a"]))
        await wait_until(lambda: len(batcher._running) == 1)
        gone = asyncio.create_task(batcher.submit("k", ["b", "c"]))
        waiting = asyncio.create_task(batcher.submit("k", ["d"]))
        await wait_until(lambda: batcher.in_flight == 4)
        gone.cancel()
        await batcher.stop()
        fn.gate.set()
        results = await asyncio.gather(running, waiting, return_exceptions=True)
        with pytest.raises(BatcherClosedError):
            await batcher.submit("k", ["e"])
        return results, batcher.in_flight

    results, in_flight = run(main())
    assert all(isinstance(r, BatcherClosedError) for r in results)
    assert in_flight == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(lambda k, i: i, max_batch_size=0)
