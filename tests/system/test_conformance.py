"""One suite every System implementation passes: what the phases may rely on, whoever runs the system.

Each test runs twice: on the local SystemHandle (embedded PostgreSQL and
Redis, the counter service as two real replicas behind link proxies) and on
KubeSystem against the FAKE API server of tests/system/kube_fake.py (which
plays the API and a tiny controller, and runs no pods). A phase on a cluster
runs in heisen's agent inside it, where services and dependencies are at
their Services' addresses; here those addresses are real servers on this
machine (embedded PostgreSQL and Redis, a listening socket for the counter),
as the agent's plan would give them, while replicas, limits and teardown go
through the fake API. Where an implementation cannot do something, the
protocol says it raises UsageError naming why; the suite holds it to that.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kube_fake import FakeCluster, fake_cluster

from heisen.agent import Addresses
from heisen.errors import UsageError
from heisen.pipeline import load_pipeline
from heisen.schema import DependencyKind, Resources
from heisen.system import KubeSystem, Replicas, System, SystemHandle, live_processes
from support import COUNTER, wait_until

pytestmark = pytest.mark.timeout(120)


def write_pipeline(directory: Path, *, init: bool) -> Path:
    shutil.copy(COUNTER / "counter_service.py", directory)
    shutil.copy(COUNTER / "schema.sql", directory)
    data = yaml.safe_load((COUNTER / "pipeline.yaml").read_text())
    if not init:  # the fake cluster has no PostgreSQL to run it on
        del data["dependencies"]["postgres"]["init"]
    data["dependencies"]["redis"] = {"kind": "redis", "embedded": True}
    data["services"]["counter"]["image"] = "ghcr.io/example/counter:1"
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class Subject:
    """A started System, and what the suite needs to see of its implementation."""

    system: System
    identities: Callable[[], list[str]]  # one per replica: changes when a replica is replaced
    limits: bool  # set_resources works (else: UsageError)
    links: bool  # link toxics work (else: UsageError)
    plant_teardown_failure: Callable[[], str]  # returns the TeardownProblem's `what`


def local_subject(directory: Path, stack: ExitStack, request: pytest.FixtureRequest) -> Subject:
    system = SystemHandle(
        load_pipeline(write_pipeline(directory, init=True)),
        directory / "run",
        seed=3,
        run_id="conformance",
    )
    stack.callback(system.stop)
    system.start()

    def identities() -> list[str]:
        return [f"pid {r.pid}" for r in system.replicas("counter").replicas_info()]

    def plant() -> str:
        # The work dir becomes a symlink to itself elsewhere: removing it fails, for real.
        work = system._work_dir
        assert work is not None
        link = directory / "work-link"
        link.symlink_to(work)
        system._work_dir = link
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        return f"work dir {link}"

    return Subject(system, identities, limits=True, links=True, plant_teardown_failure=plant)


def kube_subject(directory: Path, stack: ExitStack, request: pytest.FixtureRequest) -> Subject:
    cluster, kubeconfig = stack.enter_context(fake_cluster(directory))
    counter = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
    postgres = request.getfixturevalue("embedded_postgres")
    redis = request.getfixturevalue("embedded_redis")
    system = KubeSystem(
        load_pipeline(write_pipeline(directory, init=True)),
        namespace="heisen-conformance",
        labels={"heisen.dev/run": "conformance"},
        limits={"counter": Resources(cpu=0.5)},
        kubeconfig=kubeconfig,
        reach=Addresses(
            services={"counter": f"http://127.0.0.1:{counter.getsockname()[1]}"},
            dependencies={"postgres": ("postgres", postgres.dsn), "redis": ("redis", redis.url)},
        ),
    )
    stack.callback(system.stop)
    system.start()

    def identities() -> list[str]:
        return [pod.name for pod in system.replicas("counter").pods()]

    def plant() -> str:
        return _unlabel_namespace(cluster, "heisen-conformance")

    return Subject(system, identities, limits=False, links=False, plant_teardown_failure=plant)


def _unlabel_namespace(cluster: FakeCluster, namespace: str) -> str:
    """Someone else's namespace now, as far as its labels say: heisen refuses to delete it."""
    with cluster.lock:
        cluster.objects[("Namespace", "", namespace)]["metadata"]["labels"] = {}
    return f"namespace {namespace}"


MAKERS = {"local": local_subject, "kubernetes": kube_subject}


@pytest.fixture(scope="module", params=list(MAKERS))
def started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Subject]:
    """One system per implementation for the tests that leave it running (starting one takes 5 s)."""
    _session_servers(request)
    before = {process.pid for process in live_processes()}
    with ExitStack() as stack:
        yield MAKERS[request.param](tmp_path_factory.mktemp(request.param), stack, request)
    leaked = [p for p in live_processes() if p.pid not in before and p.alive()]
    assert leaked == [], f"stopping the shared {request.param} system left processes: {leaked}"


def _session_servers(request: pytest.FixtureRequest) -> None:
    """The session's PostgreSQL and Redis, started before the leak check counts processes."""
    if request.param == "kubernetes":
        request.getfixturevalue("embedded_postgres")
        request.getfixturevalue("embedded_redis")


@pytest.fixture
def no_leaked_processes() -> Iterator[None]:
    """Replaces the per-test guard: a shared system restarts replicas across tests; `started`
    checks that stopping it leaves nothing, and `fresh` systems are stopped in their test."""
    yield


@pytest.fixture(params=list(MAKERS))
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    """A system of its own, for a test that stops it."""
    _session_servers(request)
    before = {process.pid for process in live_processes()}
    with ExitStack() as stack:
        yield MAKERS[request.param](tmp_path, stack, request)
    leaked = [p for p in live_processes() if p.pid not in before and p.alive()]
    assert leaked == [], f"the {request.param} system left processes: {leaked}"


def accepts_tcp(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=5):
        return True


def test_endpoints_are_reachable_and_unknown_names_refused(started: Subject) -> None:
    system = started.system
    assert isinstance(system, System)
    assert isinstance(system.replicas("counter"), Replicas)
    host, port = system.service_address("counter")
    assert system.service_address() == (host, port)
    assert system.service_url("counter") == f"http://{host}:{port}"
    assert accepts_tcp(host, port)
    for kind in (DependencyKind.POSTGRES, DependencyKind.REDIS):
        address = urlsplit(system.dependency_of_kind(kind))
        assert address.hostname is not None and address.port is not None
        assert accepts_tcp(address.hostname, address.port)
    assert system.dependency_address("redis") == system.dependency_of_kind(DependencyKind.REDIS)
    with pytest.raises(UsageError, match="no service named 'nope'"):
        system.service_url("nope")
    with pytest.raises(UsageError, match="no dependency named 'nope'"):
        system.dependency_address("nope")
    described = system.describe()
    assert set(described["services"]) == {"counter"}
    assert set(described["dependencies"]) == {"postgres", "redis"}


def test_replicas_are_listed_and_a_killed_one_is_replaced(started: Subject) -> None:
    replicas = started.system.replicas("counter")
    assert replicas.name == "counter"
    infos = replicas.replicas_info()
    assert [i.index for i in infos] == [0, 1] and all(i.ready and i.alive for i in infos)
    before = started.identities()
    assert started.system.kill_replica("counter", 0) == 0

    def replaced() -> bool:
        now = started.identities()
        states = started.system.replicas("counter").replicas_info()
        return (
            len(now) == 2 and set(now) != set(before) and all(s.ready and s.alive for s in states)
        )

    wait_until(replaced, timeout=20, what="the killed replica replaced and ready")
    assert started.system.replica_of_peers("counter") is not None


def test_limits_are_set_where_supported_or_refused_saying_why(started: Subject) -> None:
    system = started.system
    if not started.limits:
        assert system.resources_of("counter") == Resources(cpu=0.5)
        assert system.replicas("counter").enforcement.mechanism == "kubernetes"
        assert system.replicas("counter").throttling() is None
        with pytest.raises(UsageError, match="sets its limits when it renders"):
            system.set_resources("counter", Resources(cpu=0.25))
        assert system.cgroups_unavailable_reason()
        return
    assert system.resources_of("counter") == Resources()
    replicas = system.set_resources("counter", Resources(cpu=0.5))
    assert system.resources_of("counter") == Resources(cpu=0.5)
    assert replicas.enforcement.mechanism in ("cgroup", "dutycycle")
    assert replicas.enforcement.cpu == 0.5
    assert replicas.throttling() is not None and replicas.cpu_usage_s() >= 0
    assert all(i.ready for i in system.replicas("counter").replicas_info())


def test_link_toxics_where_supported_or_refused_saying_why(
    started: Subject, tmp_path: Path
) -> None:
    system = started.system
    if not started.links:
        assert system.links() == []
        for attempt in (
            lambda: system.link_proxy("counter->postgres"),
            lambda: system.add_toxic("counter->postgres", {"type": "latency"}),
            lambda: system.link_traffic("counter->postgres"),
            lambda: system.start_stub("postgres", tmp_path),
        ):
            with pytest.raises(UsageError, match="no link proxies"):
                attempt()
        system.reset_faults()  # nothing to reset, and no error
        return
    assert system.links() == ["counter->postgres", "counter->redis"]
    assert system.link_proxy("counter -> redis") == "counter->redis"
    with pytest.raises(UsageError, match="no link 'nope'"):
        system.link_proxy("nope")
    toxic = system.add_toxic("counter->redis", {"type": "latency", "attributes": {"latency": 5}})
    assert toxic["type"] == "latency"
    before = system.link_traffic("counter->redis")
    system.set_link_enabled("counter->redis", False)
    system.set_link_enabled("counter->redis", True)
    system.remove_toxic("counter->redis", str(toxic["name"]))
    system.reset_faults()
    carried = system.link_traffic("counter->redis") - before
    assert carried.bytes >= 0 and carried.toxic_chunks >= 0


def test_a_dependency_restarts_and_is_reachable_again(started: Subject) -> None:
    started.system.restart_dependency("redis")
    address = urlsplit(started.system.dependency_address("redis"))
    assert address.hostname is not None and address.port is not None
    wait_until(
        lambda: accepts_tcp(address.hostname or "", address.port or 0),
        timeout=15,
        what="redis back",
    )
    with pytest.raises(UsageError, match="'nope'"):
        started.system.restart_dependency("nope")


def test_stop_returns_nothing_when_all_stopped_and_is_idempotent(started: Subject) -> None:
    """The last test on the shared system (tests run in file order, grouped by implementation)."""
    assert started.system.stop() == []
    assert started.system.stop() == []


def test_a_teardown_failure_is_returned_and_the_rest_still_stopped(fresh: Subject) -> None:
    what = fresh.plant_teardown_failure()
    problems = fresh.system.stop()
    assert [p.what for p in problems] == [what]
    assert problems[0].error and problems[0].cause is not None
    assert fresh.system.stop() == []
