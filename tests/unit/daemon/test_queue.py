"""The job queue: one job per repository, a global limit, round-robin fairness, coalescing and
the stuck-job check that stops the systemd watchdog."""

from __future__ import annotations

import threading
import time

from drbackup.daemon.queue import STUCK_GRACE_SECONDS, Job, JobQueue


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.active: set[tuple[str, str]] = set()
        self.overlaps = 0
        self.peak = 0
        self.gate = threading.Event()

    def job(self, kind: str, agency: str, source: str | None = None, store: str = "s") -> Job:
        def run(job: Job) -> None:
            with self.lock:
                if job.repo in self.active:
                    self.overlaps += 1
                self.active.add(job.repo)
                self.peak = max(self.peak, len(self.active))
                self.order.append(f"{agency}:{source or kind}")
            self.gate.wait(5)
            with self.lock:
                self.active.discard(job.repo)
        return Job(kind, agency, store, source, run)


def drain(queue: JobQueue, recorder: Recorder) -> None:
    recorder.gate.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        queue.dispatch()
        running, queued = queue.counts()
        if not running and not queued:
            return
        time.sleep(0.01)
    raise AssertionError("queue did not drain")


def test_one_job_per_repository_and_a_global_limit() -> None:
    rec = Recorder()
    queue = JobQueue(2)
    for agency in ("a", "b", "c"):
        for source in ("one", "two"):
            assert queue.submit(rec.job("backup", agency, source)) == "queued"
    queue.submit(rec.job("prune", "a"))
    started = queue.dispatch()
    assert len(started) == 2 and {j.agency for j in started} == {"a", "b"}
    drain(queue, rec)
    assert rec.overlaps == 0 and rec.peak <= 2
    assert len(rec.order) == 7


def test_round_robin_keeps_a_storm_from_starving_others() -> None:
    rec = Recorder()
    rec.gate.set()
    queue = JobQueue(1)
    for i in range(20):
        queue.submit(rec.job("backup", "storm", f"s{i}"))
    queue.submit(rec.job("backup", "quiet", "only"))
    order: list[str] = []
    while queue.counts() != (0, 0):
        for job in queue.dispatch():
            order.append(job.agency)
        time.sleep(0.005)
    assert order.index("quiet") <= 1


def test_triggers_coalesce_into_one_follow_up() -> None:
    rec = Recorder()
    queue = JobQueue(2)
    first = rec.job("backup", "a", "docs")
    assert queue.submit(first) == "queued"
    assert queue.submit(rec.job("backup", "a", "docs")) == "coalesced"
    queue.dispatch()  # first runs (gate closed)
    assert queue.submit(rec.job("backup", "a", "docs")) == "queued"  # the follow-up
    for _ in range(5):
        assert queue.submit(rec.job("backup", "a", "docs")) == "coalesced"
    assert queue.counts() == (1, 1)
    drain(queue, rec)
    assert rec.order == ["a:docs", "a:docs"]


def test_stop_accepting_drops_queued_and_refuses_new() -> None:
    rec = Recorder()
    queue = JobQueue(1)
    queue.submit(rec.job("backup", "a", "x"))
    queue.submit(rec.job("backup", "b", "y"))
    queue.dispatch()
    assert queue.stop_accepting() == 1
    assert queue.submit(rec.job("backup", "c", "z")) == "refused"
    rec.gate.set()
    assert queue.wait_idle(5)


def test_a_job_past_its_timeout_is_stuck() -> None:
    rec = Recorder()
    queue = JobQueue(1)
    job = rec.job("backup", "a", "x")
    job.timeout = 10
    queue.submit(job)
    queue.dispatch()
    assert queue.stuck() == []
    assert [j.id for j in queue.stuck(time.time() + 10 + STUCK_GRACE_SECONDS + 1)] == [job.id]
    rec.gate.set()
    assert queue.wait_idle(5)


def test_a_failing_job_frees_its_repository() -> None:
    queue = JobQueue(1)

    def boom(job: Job) -> None:
        raise RuntimeError("unexpected")

    queue.submit(Job("backup", "a", "s", "x", boom))
    queue.dispatch()
    assert queue.wait_idle(5)
    ran = threading.Event()
    queue.submit(Job("backup", "a", "s", "y", lambda job: ran.set()))
    queue.dispatch()
    assert ran.wait(5)


def test_a_job_holding_two_repositories_excludes_jobs_on_either() -> None:
    rec = Recorder()
    queue = JobQueue(4)
    copy = rec.job("copy", "a", store="replica")
    copy.also_locks = (("a", "primary"),)
    queue.submit(copy)
    queue.submit(rec.job("backup", "a", "docs", store="primary"))
    queue.submit(rec.job("check", "a", store="replica"))
    assert [j.kind for j in queue.dispatch()] == ["copy"]
    drain(queue, rec)
    assert rec.order[0] == "a:copy"


def test_a_probe_runs_beside_a_job_on_its_repository_and_past_the_limit() -> None:
    """A store reachability probe starts no restic: it takes neither the repository nor a
    concurrency slot, so an outage is noticed while a backup waits in restic's retries."""
    rec = Recorder()
    queue = JobQueue(1)
    queue.submit(rec.job("backup", "a", "one"))
    probed = threading.Event()
    queue.submit(Job("store-health", "a", "s", None, lambda job: probed.set(), probe=True))
    queue.submit(rec.job("prune", "a"))
    started = queue.dispatch()
    assert [j.kind for j in started] == ["backup", "store-health"]
    assert probed.wait(5)
    assert [j.kind for j in queue.queued()] == ["prune"]  # still one job per repository
    drain(queue, rec)
