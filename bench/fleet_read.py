"""What `drbackup fleet report` costs (issue 20 item 5b): 6 hosts x 10 agencies x 3 sources
publishing into one S3 server (moto, its request log metered from the server's side), then
the city report read with the fleet-read key's view: its time, and the requests and bytes it
reads per agency.

    python -m bench.run --only fleet_report
    python -m bench.fleet_read [--hosts 6] [--agencies 10] [--rounds 20] [--evidence 50]

Bounded by agencies x hosts, not by history: after the first report, every host publishes
`rounds` more times (the bucket is versioned, as the daemon's buckets are: every older summary
stays as a noncurrent version) and `evidence` signed drill-report-sized objects and as many
repository-pack-sized objects are written per agency (what years of drills and backups leave);
the report is measured again and must read the same requests and bytes per agency.

The hosts publish with publish_fleet (the job `drbackup fleet publish` and the daemon run) from
prepared state: the agencies were never backed up, so their summaries carry the no-good-backup
and never-drilled findings with null figures; a summary of a drilled agency has the same fields
with numbers instead (a few dozen bytes more). The report is build_fleet_report in process
(what the CLI calls, timed without the interpreter's start-up) and, once per phase, the CLI as
a subprocess (wall time, start-up included). The extrapolation to 500 agencies is linear in
the requests: 1 + agencies + agencies x hosts-per-agency, each a small GET or listing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from bench.common import BenchResult, password_file, scale
from bench.metered_s3 import MeteredMotoServer, read_log
from drbackup.config import parse_config
from drbackup.fleet.trust import Keyring
from drbackup.jobs.evidence import evidence_key
from drbackup.jobs.fleet_publish import publish_fleet
from drbackup.jobs.fleet_report import ReadResult, build_fleet_report
from drbackup.jobs.runtime import Runtime
from drbackup.verify.evidence import public_pem
from tests.support.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY

GROUP = "City report: 6 hosts x 10 agencies on one S3 server"
BUCKET = "city"
SOURCES = 3
TARGET_AGENCIES = 500


@dataclass
class Phase:
    seconds: list[float]  # build_fleet_report, in process
    cli_seconds: float  # `drbackup --json fleet report`, a subprocess
    read: ReadResult
    server_requests: int  # as the server logged them, for one report
    server_bytes: int  # response body bytes the server sent, for one report
    agencies: int
    verdicts: dict[str, int]
    list_seconds: float = 0.0  # one delimiter listing of the bucket's agencies, median
    get_seconds: float = 0.0  # one GET of a summary, median


def _config(work: Path, server: MeteredMotoServer, host: str | None,
            agencies: list[str]) -> Path:
    creds = work / "secrets" / "city.credentials"
    creds.parent.mkdir(parents=True, exist_ok=True)
    creds.write_text(f"[default]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
                     f"aws_secret_access_key = {TEST_SECRET_KEY}\n")
    creds.chmod(0o600)
    data = work / "data"
    document: dict[str, Any] = {
        "daemon": {"state_dir": str(work / "state"), "cache_dir": str(work / "cache"),
                   "hostname": host or "office", "metrics_listen": "127.0.0.1:0"},
        "stores": {"city": {"url": server.url(BUCKET), "credentials_file": str(creds)}},
        "agencies": [],
    }
    if agencies:
        document["fleet"] = {"valid_for": "1h"}
        secret = password_file(work)
        for agency in agencies:
            sources = []
            for index in range(SOURCES):
                path = data / agency / f"s{index}"
                path.mkdir(parents=True, exist_ok=True)
                sources.append({"id": f"docs-{index}", "kind": "directory",
                                "paths": [str(path)]})
            document["agencies"].append({"id": agency, "password_file": str(secret),
                                         "store": "city", "sources": sources})
    path = work / "drbackup.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def _runtime(path: Path) -> Runtime:
    return Runtime.create(parse_config(path.read_text(), path))


def _publish_all(hosts: list[Runtime]) -> None:
    for rt in hosts:
        outcome = publish_fleet(rt)
        assert not outcome.failed, outcome.failed


def _history(server: MeteredMotoServer, agencies: list[str], objects: int) -> None:
    """What years leave in each agency's prefix: drill reports and repository packs."""
    client = server.client()
    report = os.urandom(3000)  # a signed drill report is a few KB
    pack = os.urandom(64 << 10)
    for agency in agencies:
        for index in range(objects):
            client.put_object(Bucket=BUCKET, Body=report,
                              Key=f"{agency}/reports/20260101T{index:06d}Z-drill-docs-0-run"
                                  f"{index}.json")
            client.put_object(Bucket=BUCKET, Body=pack,
                              Key=f"{agency}/data/{index:02x}/{index:064x}")


def _probe(server: MeteredMotoServer, key: str) -> tuple[float, float]:
    """The server's own latency for the report's per-agency requests: the listing of one
    agency's fleet/ and one summary's GET (medians of 9), to tell the server's cost from the
    reader's."""
    client = server.client()
    lists, gets = [], []
    fleet = key.rsplit("/", 1)[0] + "/"
    for _ in range(9):
        started = time.perf_counter()
        client.list_objects_v2(Bucket=BUCKET, Prefix=fleet)
        lists.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        gets.append(time.perf_counter() - started)
    return statistics.median(lists), statistics.median(gets)


def _measure(office: Path, server: MeteredMotoServer, ring: Path, repeat: int, *,
             cli: bool = True) -> Phase:
    rt = _runtime(office)
    keyring = Keyring.load(ring)
    try:
        build_fleet_report(rt, keyring)  # warm: boto3 client and connection pool
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            report, read = build_fleet_report(rt, keyring)
            seconds.append(time.perf_counter() - started)
        start = server.offset()
        report, read = build_fleet_report(rt, keyring)
        time.sleep(0.3)  # the server logs a request after its body went out
        logged, _ = read_log(server.log_path, start)
    finally:
        rt.close()
    list_seconds, get_seconds = _probe(server, read.files[0].key)
    verdicts: dict[str, int] = {}
    for agency in report.agencies:
        verdicts[agency.verdict] = verdicts.get(agency.verdict, 0) + 1
    phase = Phase(seconds, 0.0, read, len(logged), sum(r.bytes for r in logged),
                  len(report.agencies), verdicts, list_seconds, get_seconds)
    if not cli:
        return phase
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "drbackup", "--config", str(office), "--json",
                           "fleet", "report", "--keyring", str(ring)],
                          capture_output=True, text=True, check=False)
    assert done.returncode in (0, 30), done.stderr
    assert len(json.loads(done.stdout)["agencies"]) == len(report.agencies)
    phase.cli_seconds = time.perf_counter() - started
    return phase


def measure(work: Path, hosts: int, per_host: int, rounds: int, evidence: int,
            repeat: int) -> tuple[Phase, Phase, Phase]:
    """The report with half the hosts published, with all, and with all after the history."""
    server = MeteredMotoServer(work / "moto")
    server.workdir.mkdir(parents=True, exist_ok=True)
    server.start()
    runtimes: list[Runtime] = []
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET,
                                     VersioningConfiguration={"Status": "Enabled"})
        ring = work / "keyring"
        ring.mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        for h in range(hosts):
            agencies = [f"h{h}-agency-{a:02d}" for a in range(per_host)]
            names += agencies
            rt = _runtime(_config(work / f"host-{h}", server, f"host-{h}", agencies))
            runtimes.append(rt)
            (ring / f"host-{h}.pem").write_bytes(public_pem(evidence_key(rt).public_key))
        office = _config(work / "office", server, None, [])
        _publish_all(runtimes[: hosts // 2])
        half = _measure(office, server, ring, repeat, cli=False)
        _publish_all(runtimes[hosts // 2:])
        first = _measure(office, server, ring, repeat)
        for _ in range(rounds):
            _publish_all(runtimes)
        _history(server, names, evidence)
        later = _measure(office, server, ring, repeat)
        return half, first, later
    finally:
        for rt in runtimes:
            rt.close()
        server.stop()


def _per(phase: Phase, value: float) -> float:
    return value / phase.agencies


def results(half: Phase, first: Phase, later: Phase, hosts: int, per_host: int, rounds: int,
            evidence: int) -> list[BenchResult]:
    agencies = first.agencies
    t_half, t_first = statistics.median(half.seconds), statistics.median(first.seconds)
    slope = (t_first - t_half) / max(1, agencies - half.agencies)  # seconds per agency
    size = f"{hosts} hosts x {per_host} agencies x {SOURCES} sources"
    history = (f"after {rounds} more publications per host (versioned bucket) and "
               f"{evidence} drill reports + {evidence} packs per agency")
    per_request = statistics.median(first.seconds) / first.read.requests
    requests_500 = 1 + TARGET_AGENCIES * 2  # one host per agency: a listing and a GET each
    out = [
        BenchResult(GROUP, f"fleet report ({size}), in process", "s", first.seconds,
                    note=f"{agencies} agencies, {first.read.requests} requests, verdicts "
                         f"{first.verdicts}; median of {len(first.seconds)}"),
        BenchResult(GROUP, f"fleet report, {history}", "s", later.seconds,
                    note=f"{later.read.requests} requests, the same; the time is the server's: "
                         f"moto walks every key of the bucket for each listing (one agency's "
                         f"fleet/ listing {first.list_seconds * 1000:.0f} -> "
                         f"{later.list_seconds * 1000:.0f} ms, one GET "
                         f"{first.get_seconds * 1000:.1f} -> {later.get_seconds * 1000:.1f} ms "
                         "as a bare client sees them); an S3 index lists a prefix without "
                         "walking the rest"),
        BenchResult(GROUP, "`drbackup --json fleet report` (subprocess, start-up included)", "s",
                    [first.cli_seconds, later.cli_seconds],
                    note="first and after the history: one run each"),
        BenchResult(GROUP, "requests per agency (reader's count)", "requests",
                    [_per(first, first.read.requests)],
                    note="1 listing of the agencies for all, 1 listing of fleet/ and 1 GET per "
                         "host summary each"),
        BenchResult(GROUP, f"requests per agency, {history}", "requests",
                    [_per(later, later.read.requests)],
                    goal=_per(first, first.read.requests), goal_op="<=",
                    goal_text="unchanged by history"),
        BenchResult(GROUP, "bytes read per agency (summaries' bodies)", "B",
                    [_per(first, first.read.bytes_read)]),
        BenchResult(GROUP, f"bytes read per agency, {history}", "B",
                    [_per(later, later.read.bytes_read)],
                    goal=_per(first, first.read.bytes_read) * 1.01, goal_op="<=",
                    goal_text="unchanged by history (±1%: sequence digits)"),
        BenchResult(GROUP, "bytes the server sent per agency (listings included)", "B",
                    [_per(first, first.server_bytes), _per(later, later.server_bytes)],
                    note=f"server log: {first.server_requests} then {later.server_requests} "
                         "requests; first, then after the history"),
        BenchResult(GROUP, f"fleet report of {half.agencies} agencies ({hosts // 2} hosts), "
                           "in process", "s", half.seconds,
                    note=f"{half.read.requests} requests: the point the per-agency slope is "
                         "measured from"),
        BenchResult(GROUP, f"extrapolated: fleet report of {TARGET_AGENCIES} agencies "
                           "(one host each), in process, from the per-agency slope", "s",
                    [t_first + slope * (TARGET_AGENCIES - agencies)],
                    note=f"{t_half:.2f} s at {half.agencies}, {t_first:.2f} s at {agencies}: "
                         f"{slope * 1000:.1f} ms per agency; an agency on 2 hosts adds one GET"),
        BenchResult(GROUP, f"extrapolated: fleet report of {TARGET_AGENCIES} agencies "
                           "(one host each), in process, per request", "s",
                    [per_request * requests_500],
                    note=f"linear in requests: {per_request * 1000:.2f} ms per request "
                         f"measured x {requests_500} requests; "
                         f"~{_per(first, first.read.bytes_read) * TARGET_AGENCIES / 1e6:.1f} "
                         "MB read; the listings page at 1000 keys, so the agencies' "
                         "listing is 1 request per 1000 agencies"),
    ]
    return out


def run(work_dir: Path) -> list[BenchResult]:
    full = scale() >= 1
    hosts, per_host = 6, 10
    rounds, evidence, repeat = (20, 50, 7) if full else (3, 5, 3)
    half, first, later = measure(work_dir, hosts, per_host, rounds, evidence, repeat)
    return results(half, first, later, hosts, per_host, rounds, evidence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--agencies", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--evidence", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drbackup-fleet-read"))
    args = parser.parse_args(argv)
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    phases = measure(args.work, args.hosts, args.agencies, args.rounds, args.evidence,
                     args.repeat)
    for result in results(*phases, args.hosts, args.agencies, args.rounds, args.evidence):
        print(f"{result.name}: {statistics.median(result.samples):.4g} {result.unit} "
              f"{result.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
