"""Exponential, capped back-off for jobs whose store is unreachable: the first failure waits
`initial`, each further one `factor` times longer, never more than `cap`; a success resets it.

The daemon keeps one Backoff per (job kind, store) and asks `ready(now)` before starting a job,
so an unreachable store is retried at a falling rate instead of failing in a loop, and work
resumes on the first attempt after the store returns. Time is passed in (no clock inside), which
keeps it deterministic and testable.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.0  # fraction of the delay added at random (0.1 = up to +10%)
    failures: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial or self.factor < 1:
            raise ValueError("Backoff needs 0 < initial <= cap and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff jitter must be between 0 and 1")

    def delay(self, failures: int | None = None) -> float:
        """The wait after the n-th consecutive failure (without jitter)."""
        count = self.failures if failures is None else failures
        if count <= 0:
            return 0.0
        # Cap the exponent so huge failure counts cannot overflow.
        exponent = min(count - 1, 64)
        return float(min(self.cap, self.initial * self.factor ** exponent))

    def failure(self, now: float, error: str | None = None) -> float:
        """Record a failure at `now`; returns the time of the next allowed attempt."""
        self.failures += 1
        self.last_error = error
        wait = self.delay()
        if self.jitter:
            wait = min(self.cap, wait * (1 + self._rng.uniform(0, self.jitter)))
        self.next_attempt_at = now + wait
        return self.next_attempt_at

    def success(self) -> None:
        self.failures = 0
        self.next_attempt_at = 0.0
        self.last_error = None

    def ready(self, now: float) -> bool:
        return now >= self.next_attempt_at

    def remaining(self, now: float) -> float:
        return max(0.0, self.next_attempt_at - now)

    @property
    def backing_off(self) -> bool:
        return self.failures > 0


class StoreBackoffs:
    """One Backoff per store name, shared by every job on that store in this process (the
    daemon runs jobs in threads). Only unreachability backs off: a store that answers, even
    with an error, is not retried slower."""

    def __init__(self, initial: float = 30.0, factor: float = 2.0, cap: float = 900.0):
        self._lock = threading.Lock()
        self._by_store: dict[str, Backoff] = {}
        self._params = (initial, factor, cap)

    def get(self, store: str) -> Backoff:
        with self._lock:
            if store not in self._by_store:
                initial, factor, cap = self._params
                self._by_store[store] = Backoff(initial=initial, factor=factor, cap=cap)
            return self._by_store[store]

    def ready(self, store: str, now: float) -> bool:
        with self._lock:
            backoff = self._by_store.get(store)
            return backoff is None or backoff.ready(now)

    def failure(self, store: str, now: float, error: str | None = None) -> float:
        backoff = self.get(store)
        with self._lock:
            return backoff.failure(now, error)

    def success(self, store: str) -> None:
        backoff = self.get(store)
        with self._lock:
            backoff.success()


STORE_BACKOFFS = StoreBackoffs()
"""The daemon's shared registry (drbackup/jobs/*_job functions consult it)."""
