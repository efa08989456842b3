"""Each experiment kind really happens to the real system, and is removed afterwards."""

from __future__ import annotations

import random
import socket
import threading
import time

import httpx
import pytest
from chaos_support import burner_pids, no_faults_left

from heisen.chaos._experiments import LocalInjector
from heisen.chaos._faults import Faults
from heisen.chaos._rounds import ExperimentRecord, Round
from heisen.chaos._timeline import Timeline
from heisen.pipeline import Resources
from heisen.schema import Experiment
from support import wait_until

pytestmark = pytest.mark.slow


def injector(system, tmp_path) -> LocalInjector:
    timeline = Timeline()
    return LocalInjector(system, Faults(timeline), timeline, tmp_path)


def first_round(experiment, seed: int) -> Round:
    return Round(
        experiment, 1, random.Random(seed), threading.Event(), ExperimentRecord(experiment, 1)
    )


def in_background(inj, experiment):
    stop = threading.Event()
    record = ExperimentRecord(experiment, experiment.count)
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "targets", inj.inject(Round(experiment, 1, random.Random(1), stop, record))
        )
    )
    thread.start()
    return thread, stop, record, result


def count_ms(system) -> float:
    began = time.monotonic()
    assert httpx.get(system.service_url() + "/count", timeout=10).status_code == 200
    return (time.monotonic() - began) * 1000


def test_pod_delete_replaces_the_killed_replica(ledger, tmp_path):
    _, system = ledger
    replicas = system.replicas("ledger")
    before = {i.index: i.pid for i in replicas.replicas_info()}
    experiment = Experiment(name="kill", kind="pod-delete", service="ledger", percentage=50)
    targets = injector(system, tmp_path).inject(first_round(experiment, 3))
    after = {i.index: i for i in replicas.replicas_info()}
    assert len(targets) == 1
    killed = int(targets[0].rsplit("-", 1)[1])
    assert after[killed].pid != before[killed] and after[killed].ready
    assert after[1 - killed].pid == before[1 - killed]


def test_graceful_container_kill_also_comes_back(ledger, tmp_path):
    _, system = ledger
    replicas = system.replicas("ledger")
    before = [i.pid for i in replicas.replicas_info()]
    experiment = Experiment(
        name="ck", kind="container-kill", service="ledger", percentage=100, sequence="parallel"
    )
    injector(system, tmp_path).inject(first_round(experiment, 3))
    after = replicas.replicas_info()
    assert all(i.ready for i in after) and not set(before) & {i.pid for i in after}


def test_latency_grows_on_the_link_and_goes_away(ledger, tmp_path):
    _, system = ledger
    baseline = min(count_ms(system) for _ in range(3))
    experiment = Experiment(
        name="slow",
        kind="pod-network-latency",
        link="ledger->postgres",
        duration=3,
        attributes={"latency": 150},
    )
    thread, stop, record, _ = in_background(injector(system, tmp_path), experiment)
    try:
        wait_until(
            lambda: system.proxies.toxics("ledger->postgres"), what="the latency toxic is on"
        )
        slowed = min(count_ms(system) for _ in range(2))
    finally:
        stop.set()
        thread.join(10)
    assert slowed > baseline + 250, (baseline, slowed)  # connect + query each cross the link
    assert min(count_ms(system) for _ in range(3)) < baseline + 100
    assert len(record.windows) == 1
    no_faults_left(system)


def test_partition_refuses_the_link(ledger, tmp_path):
    _, system = ledger
    host, port = system.proxies.proxy("ledger->postgres")["listen"].rsplit(":", 1)
    experiment = Experiment(name="cut", kind="partition", link="ledger->postgres", duration=3)
    thread, stop, _, _ = in_background(injector(system, tmp_path), experiment)
    try:
        wait_until(
            lambda: not system.proxies.proxy("ledger->postgres").get("enabled", True),
            what="the link is cut",
        )
        try:
            failed = httpx.get(system.service_url() + "/count", timeout=10).status_code >= 500
        except httpx.HTTPError:  # the replica's handler died on the refused connection
            failed = True
        with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.sendall(
                b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
            )  # SSLRequest: a live postgres answers a byte
            assert sock.recv(1)
    finally:
        stop.set()
        thread.join(10)
    assert failed
    assert httpx.get(system.service_url() + "/count", timeout=10).status_code == 200
    no_faults_left(system)


def test_cpu_hog_burns_inside_the_replica_cgroup(ledger, tmp_path):
    _, system = ledger
    if system.cgroups_unavailable_reason():
        pytest.skip(f"no writable cgroups here: {system.cgroups_unavailable_reason()}")
    replicas = system.set_resources("ledger", Resources(cpu=1.0))
    group = replicas.cgroup_of(0)
    assert group is not None
    experiment = Experiment(
        name="hog", kind="pod-cpu-hog", service="ledger", percentage=50, duration=1.5
    )
    used = group.cpu_usage_s()
    inj = injector(system, tmp_path)
    targets = inj.inject(first_round(experiment, 0))
    hogged = replicas.cgroup_of(int(targets[0].rsplit("-", 1)[1]))
    burned = hogged.cpu_usage_s() - (used if hogged is group else 0.0)
    assert burned > 0.6, burned  # ~1 s of one core within the 1-CPU quota
    assert not burner_pids() and not inj.warnings


def test_dependency_restart_restarts_postgres(ledger, tmp_path):
    from heisen.oracle.probes import sql_probe

    _, system = ledger
    dsn = system.dependency_address("postgres")
    query = "SELECT pg_postmaster_start_time()::text AS started"
    before = sql_probe(dsn, query)["rows"][0]["started"]
    experiment = Experiment(name="pg", kind="dependency-restart", dependency="postgres")
    injector(system, tmp_path).inject(first_round(experiment, 0))
    assert sql_probe(dsn, query)["rows"][0]["started"] != before
    assert httpx.get(system.service_url() + "/count", timeout=10).status_code == 200
