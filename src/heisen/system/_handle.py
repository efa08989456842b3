"""SystemHandle: the running system under test, one object for every phase.

Start order: the proxy daemon, then dependencies (embedded PostgreSQL and
Redis, HTTP dependencies from `command:`, or external ones by address), then
services in the order the pipeline names them. Every service → dependency
link goes through its own TCP proxy in the daemon (`inventory->redis`), so
isolate and chaos can add latency and faults to one link; every service is
fronted by a proxy that balances connections over its ready replicas. Probes
and setup steps reach dependencies directly, so faults never blind the oracle.
Stop order is the reverse; stop() is idempotent and runs on every exit path,
and goes on past what fails to stop, returning it as TeardownProblems.

CPU/memory limits use cgroups when a hierarchy is writable; `HEISEN_CGROUPS=off`
in the environment makes heisen act as if none were (the duty-cycle fallback,
or `contain`'s `strict: true` error), to try those paths on a machine that has them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heisen import _templates
from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import Dependency, DependencyKind, LoadedPipeline, Resources, Service, Tls
from heisen.system._addresses import check_address, host_port, with_host_port
from heisen.system._context import DependencyEndpoint, Endpoint, TemplateContext
from heisen.system._ports import LOOPBACK, free_port
from heisen.system_protocol import DependencyOperation, LinkTraffic, TeardownProblem

if TYPE_CHECKING:
    from heisen.system._cgroups import CgroupManager
    from heisen.system._postgres import EmbeddedPostgres
    from heisen.system._process import ManagedProcess
    from heisen.system._proxy_client import ProxyControl
    from heisen.system._redis import EmbeddedRedis
    from heisen.system._replicas import ReplicaSet

log = logging.getLogger(__name__)

OWNER_FILE = "owner.pid"
DEFAULT_PORTS = {DependencyKind.POSTGRES: 5432, DependencyKind.REDIS: 6379, DependencyKind.HTTP: 80}


@dataclass
class _RunningDependency:
    name: str
    spec: Dependency
    address: str  # DSN or URL reaching it directly
    server: EmbeddedPostgres | EmbeddedRedis | ReplicaSet | None = None  # None: external
    stub: ManagedProcess | None = None  # a stub serving in its place


@dataclass
class _RunningService:
    name: str
    spec: Service
    front: tuple[str, int]
    replicas: ReplicaSet | None = None  # None when external
    resources: Resources = field(default_factory=Resources)


def _default_port(dependency: Dependency) -> int:
    return 443 if dependency.speaks_tls else DEFAULT_PORTS[dependency.kind]


def _url(service: Service, host: str, port: int) -> str:
    """The base URL of `service` at host:port: https when heisen speaks TLS to it."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{'https' if service.speaks_tls else 'http'}://{netloc}"


def sweep_stale_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove the temp dirs of runs whose heisen process is gone (killed with SIGKILL)."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob("heisen-*"):
        try:
            owner = int((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except PermissionError:
            continue
    return removed


def _remove_dir(path: Path) -> None:
    """Remove all of `path` that can be removed; then raise OSError naming what could not."""
    failed: list[str] = []

    def note(
        function: object, where: str, info: tuple[type[BaseException], BaseException, object]
    ) -> None:
        if not isinstance(info[1], FileNotFoundError):
            failed.append(f"{where}: {info[1]}")

    shutil.rmtree(path, onerror=note)
    if failed:
        raise OSError(
            "; ".join(failed[:3]) + (f" (and {len(failed) - 3} more)" if len(failed) > 3 else "")
        )


class SystemHandle:
    """Start, reach, disturb and stop the system a pipeline describes."""

    def __init__(
        self,
        loaded: LoadedPipeline,
        run_dir: Path,
        *,
        seed: int,
        run_id: str,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.pipeline = loaded.pipeline
        self.run_dir = run_dir
        self.seed = seed
        self.run_id = run_id
        self.log_dir = run_dir / "logs"
        self._log = log or (lambda message: None)
        self._work_dir: Path | None = None
        self._proxyd: ManagedProcess | None = None
        self.proxies: ProxyControl | None = None
        self._dependencies: dict[str, _RunningDependency] = {}
        self._services: dict[str, _RunningService] = {}
        self._links: dict[str, tuple[str, int]] = {}
        self._peer_replicas: dict[str, tuple[int, dict[int, int]]] = {}  # see replica_of_peers
        self._cgroups: CgroupManager | None = None
        self._already_running: set[int] = set()
        self.limits_warning: str | None = None
        self._started = False
        self.teardown_problems: list[TeardownProblem] = []  # what the last stop() returned

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> SystemHandle:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for problem in self.stop():
            log.warning("did not stop cleanly: %s", problem)

    def start(self) -> None:
        from heisen.system._process import live_processes
        from heisen.system._proxy_client import start_proxy_daemon

        self._already_running = {process.pid for process in live_processes()}
        self._started = True
        sweep_stale_work_dirs()
        self._work_dir = Path(tempfile.mkdtemp(prefix=f"heisen-{self.run_id}-"))
        self._work_dir.chmod(0o755)
        (self._work_dir / OWNER_FILE).write_text(str(os.getpid()))
        self._log("starting the proxy daemon")
        self._proxyd, self.proxies = start_proxy_daemon(self.log_dir / "proxyd.log", self.seed)
        for name, dep in self.pipeline.dependencies.items():
            self._log(f"starting dependency {name}")
            self._dependencies[name] = self._start_dependency(name, dep)
        for name, service in self.pipeline.services.items():
            self._log(f"starting service {name}")
            self._services[name] = self._start_service(name, service, Resources())

    def stop(self) -> list[TeardownProblem]:
        """Stop everything started, in reverse order; what failed to stop is returned.

        A failure does not stop the teardown: every other part is still stopped.
        """
        from heisen.system._process import live_processes

        if not self._started:
            return []
        self._started = False
        problems: list[TeardownProblem] = []

        def attempt(what: str, stop: Callable[[], object]) -> None:
            try:
                stop()
            except Exception as exc:
                problems.append(TeardownProblem.of(what, exc))

        for running in reversed(list(self._services.values())):
            if running.replicas is not None:
                attempt(f"service {running.name}", running.replicas.stop)
        for dependency in reversed(list(self._dependencies.values())):
            if dependency.stub is not None:
                attempt(f"stub of {dependency.name}", dependency.stub.stop)
            if dependency.server is not None:
                attempt(f"dependency {dependency.name}", dependency.server.stop)
        if self._proxyd is not None:
            attempt("proxy daemon", self._proxyd.stop)
        if self._cgroups is not None:
            attempt("cgroups", self._cgroups.remove_all)
        # Whatever was spawned but not yet recorded when a start was cut short (Ctrl-C mid-start).
        for process in reversed(live_processes()):
            if process.pid not in self._already_running:
                attempt(f"process {process.name} (pid {process.pid})", process.stop)
        if self._work_dir is not None:
            attempt(f"work dir {self._work_dir}", partial(_remove_dir, self._work_dir))
        self.teardown_problems = problems
        return problems

    def kill(self) -> None:
        """The last resort when stop() hangs: SIGKILL everything started, remove the work dir.

        Safe to call from another thread while stop() is stuck; it waits on nothing.
        """
        from heisen.system._process import live_processes

        for process in live_processes():
            if process.pid not in self._already_running:
                process.signal(signal.SIGKILL)
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    # ----------------------------------------------------------------- dependencies

    def _start_dependency(self, name: str, dep: Dependency) -> _RunningDependency:
        assert self._work_dir is not None
        if dep.kind == DependencyKind.POSTGRES and dep.embedded:
            from heisen.system._postgres import EmbeddedPostgres

            postgres = EmbeddedPostgres(
                self._work_dir / name, log_path=self.log_dir / f"{name}.log"
            )
            postgres.start()
            if dep.init:
                sql = self.loaded.resolve(dep.init).read_text(encoding="utf-8")
                try:
                    postgres.execute(sql)
                except Exception as exc:
                    raise UsageError(f"dependencies.{name}.init: {dep.init} failed: {exc}") from exc
            return _RunningDependency(name, dep, postgres.dsn, postgres)
        if dep.kind == DependencyKind.REDIS and dep.embedded:
            from heisen.system._redis import EmbeddedRedis

            redis = EmbeddedRedis(self._work_dir / name, log_path=self.log_dir / f"{name}.log")
            redis.start()
            return _RunningDependency(name, dep, redis.url, redis)
        if dep.command:
            replicas = self._replica_set(
                name,
                dep.command,
                1,
                None,
                dep.env,
                dep.health.path,
                Resources(),
                startup_s=dep.health.timeout,
                tls=dep.tls,
            )
            replicas.start()
            host, port = replicas.ready_endpoints()[0]
            scheme = "https" if dep.speaks_tls else "http"
            return _RunningDependency(name, dep, f"{scheme}://{host}:{port}", replicas)
        address = dep.dsn or dep.url
        assert address is not None
        check_address(address, self.pipeline.allow_hosts, f"dependencies.{name}")
        return _RunningDependency(name, dep, address)

    def dependency_address(self, name: str) -> str:
        """The DSN or URL that reaches dependency `name` directly (for probes and setup)."""
        try:
            return self._dependencies[name].address
        except KeyError:
            raise UsageError(f"no dependency named {name!r}") from None

    def dependency_of_kind(self, kind: DependencyKind, name: str | None = None) -> str:
        if name is not None:
            return self.dependency_address(name)
        matches = [d for d in self._dependencies.values() if d.spec.kind == kind]
        if len(matches) != 1:
            raise UsageError(f"say which {kind.value} dependency with on: (found {len(matches)})")
        return matches[0].address

    # ----------------------------------------------------------------- services

    def _start_service(self, name: str, service: Service, resources: Resources) -> _RunningService:
        if service.url:
            check_address(service.url, self.pipeline.allow_hosts, f"services.{name}")
            host, port = host_port(service.url, 443 if service.speaks_tls else 80)
            return _RunningService(name, service, (host, port), None, resources)
        front_host, front_port = self._control().create(f"svc:{name}", [], listen=f"{LOOPBACK}:0")
        replicas = self._start_replicas(name, service, resources)
        return _RunningService(name, service, (front_host, front_port), replicas, resources)

    def _control(self) -> ProxyControl:
        if self.proxies is None:
            raise UsageError("the system is not started: it has no proxies yet")
        return self.proxies

    def _start_replicas(self, name: str, service: Service, resources: Resources) -> ReplicaSet:
        """Start `service`'s replicas under `resources`; its front proxy follows their readiness."""
        assert service.command is not None
        proxy = f"svc:{name}"

        control = self._control()

        def follow(ready: list[tuple[str, int]]) -> None:
            control.set_upstreams(proxy, [f"{host}:{port}" for host, port in ready])

        replicas = self._replica_set(
            name,
            service.command,
            service.replicas,
            service.cwd,
            service.env,
            service.health.path,
            resources,
            startup_s=service.health.timeout,
            on_ready_change=follow,
            tls=service.tls,
        )
        replicas.start()
        follow(replicas.ready_endpoints())
        return replicas

    def _replica_set(
        self,
        name: str,
        command: list[str],
        count: int,
        cwd: str | None,
        env: Mapping[str, str],
        health_path: str,
        resources: Resources,
        *,
        startup_s: float = 30.0,
        on_ready_change: Callable[[list[tuple[str, int]]], None] | None = None,
        tls: Tls | None = None,
    ) -> ReplicaSet:
        from heisen.system._replicas import ReplicaSet
        from heisen.system._tls_target import TlsSettings

        def env_for(index: int, port: int) -> dict[str, str]:
            context = self._template_context(name, replica=index)
            rendered = {
                key: str(_templates.render_text(value, _templates.mapping_resolver(context)))
                for key, value in env.items()
            }
            rendered["PORT"] = str(port)
            rendered.setdefault("HEISEN_REPLICA", str(index))
            rendered.setdefault("SEED", str(self.seed))
            return rendered

        context = self._template_context(name, replica=0)
        argv = [
            str(_templates.render_text(part, _templates.mapping_resolver(context)))
            for part in command
        ]
        workdir = self.loaded.resolve(cwd) if cwd else self.loaded.base_dir
        cgroups = None
        if resources.cpu or resources.memory:
            cgroups = self._cgroup_manager()
        return ReplicaSet(
            name,
            argv,
            replicas=count,
            cwd=workdir,
            log_dir=self.log_dir,
            env_for=env_for,
            health_path=health_path,
            startup_deadline_s=startup_s,
            cpu=resources.cpu,
            memory=resources.memory,
            cgroups=cgroups,
            limits_fallback="dutycycle",
            restart_policy="Always",
            on_ready_change=on_ready_change,
            health_tls=(
                TlsSettings.of(tls, self.loaded.base_dir).health_context()
                if tls is not None
                else None
            ),
        )

    def _cgroup_manager(self) -> CgroupManager | None:
        from heisen.system._cgroups import CgroupManager

        if self._cgroups is None:
            self._cgroups = CgroupManager(self.run_id)
            self._cgroups.cleanup_stale()
        return self._cgroups if self.cgroups_unavailable_reason() is None else None

    def cgroups_unavailable_reason(self) -> str | None:
        from heisen.system._cgroups import CgroupManager

        if os.environ.get("HEISEN_CGROUPS", "").lower() == "off":
            return "cgroups turned off by HEISEN_CGROUPS=off"
        manager = self._cgroups or CgroupManager(self.run_id)
        reason: str | None = manager.available()
        return reason

    def _link(self, source: str, target: str, upstream: tuple[str, int]) -> tuple[str, int]:
        name = f"{source}->{target}"
        if name not in self._links:
            self._links[name] = self._control().create(
                name, [f"{upstream[0]}:{upstream[1]}"], listen=f"{LOOPBACK}:0"
            )
        return self._links[name]

    def _template_context(self, source: str, *, replica: int) -> TemplateContext:
        deps: dict[str, DependencyEndpoint] = {}
        for name, dependency in self._dependencies.items():
            direct = host_port(dependency.address, _default_port(dependency.spec))
            host, port = self._link(source, name, direct)
            address = with_host_port(dependency.address, host, port)
            deps[name] = {"dsn": address, "url": address, "host": host, "port": port}
        services: dict[str, Endpoint] = {}
        for name, running in self._services.items():
            host, port = (
                self._link(source, name, running.front) if name != source else running.front
            )
            services[name] = {"url": _url(running.spec, host, port), "host": host, "port": port}
        return {
            "deps": deps,
            "services": services,
            "python": sys.executable,
            "run_dir": str(self.run_dir),
            "seed": self.seed,
            "replica": replica,
        }

    def service_url(self, name: str | None = None) -> str:
        running = self._service(name)
        return _url(running.spec, *running.front)

    def service_address(self, name: str | None = None) -> tuple[str, int]:
        return self._service(name).front

    def _service(self, name: str | None) -> _RunningService:
        if name is None:
            name = next(iter(self._services))
        try:
            return self._services[name]
        except KeyError:
            raise UsageError(f"no service named {name!r}") from None

    def replicas(self, service: str | None = None) -> ReplicaSet:
        running = self._service(service)
        if running.replicas is None:
            raise UsageError(
                f"service {running.name!r} is already running at a url: heisen cannot restart or kill it"
            )
        return running.replicas

    def replica_of_peers(self, service: str | None = None) -> dict[int, int]:
        """`{client local port: replica index}` for the connections `service`'s front proxy
        accepted: which replica served each client connection, by its port.

        Asks the proxy only for the connections accepted since the last call and keeps
        the rest, so a call after every trial stays cheap (one API call: 3-5 ms, 14 ms
        for 1,000 new connections). A port used again maps to its latest connection: an
        earlier connection of the same trial from the same port (loopback reuses ports
        after some thousands of short connections) would be charged to the later one's
        replica. A connection given to an upstream that is no replica now (one restarted
        since, on a new port) is left out. Empty for a service at a `url:`.
        """
        running = self._service(service)
        if running.replicas is None or self.proxies is None:
            return {}
        seen, known = self._peer_replicas.get(running.name, (0, {}))
        total, peers = self.proxies.peers_since(f"svc:{running.name}", seen)
        index_of = {info.port: info.index for info in running.replicas.replicas_info()}
        for peer, upstream in peers.items():
            port = int(peer.rpartition(":")[2])
            replica = index_of.get(int(upstream.rpartition(":")[2]))
            if replica is None:
                known.pop(port, None)
            else:
                known[port] = replica
        self._peer_replicas[running.name] = (total, known)
        return dict(known)

    def kill_replica(self, service: str, index: int, sig: int = signal.SIGKILL) -> int:
        replicas = self.replicas(service)
        replicas.kill(index, sig)
        return int(index)

    def resources_of(self, service: str) -> Resources:
        """The CPU and memory limits `service`'s replicas run under now (none: Resources())."""
        return self._service(service).resources

    def set_resources(self, service: str, resources: Resources) -> ReplicaSet:
        """Restart `service`'s replicas under these CPU and memory limits."""
        running = self._service(service)
        if running.replicas is None:
            raise UsageError(
                f"service {service!r} is already running at a url: heisen cannot limit it"
            )
        running.replicas.stop()
        replicas = self._start_replicas(service, running.spec, resources)
        running.replicas = replicas
        running.resources = resources
        return replicas

    # ----------------------------------------------------------------- links and faults

    def links(self) -> list[str]:
        return sorted(self._links)

    def link_proxy(self, link: str) -> str:
        name = link.replace(" ", "")
        if name not in self._links:
            raise UsageError(f"no link {link!r} (links: {', '.join(self.links())})")
        return name

    def link_traffic(self, link: str) -> LinkTraffic:
        """What the link has carried so far, and what its toxics added to it."""
        stats = self._control().stats(self.link_proxy(link))
        return LinkTraffic(
            stats.bytes_upstream + stats.bytes_downstream,
            stats.toxic_chunks,
            stats.toxic_delay_s,
            stats.round_trips,
        )

    def _link_protocol(self, link: str) -> str:
        target = link.partition("->")[2]
        dependency = self._dependencies.get(target)
        return dependency.spec.kind.value if dependency is not None else "http"

    def tap_links(self) -> dict[str, str]:
        """Decode every link's protocol; the replicas heisen started restart, so that every
        connection they open (their pools included) goes through the tap from its first byte."""
        control = self._control()
        protocols = {link: self._link_protocol(link) for link in self._links}
        for link, protocol in protocols.items():
            control.set_tap(link, protocol)
        for running in self._services.values():
            if running.replicas is not None:
                self.set_resources(running.name, running.resources)
        return protocols

    def untap_links(self) -> None:
        if self.proxies is None:
            return
        for link in self._links:
            self.proxies.set_tap(link, None)

    def link_operations(self, link: str, since: int = 0) -> tuple[int, list[DependencyOperation]]:
        total, operations, _ = self._control().operations_since(self.link_proxy(link), since)
        return total, operations

    def link_tap_lost(self, link: str) -> dict[str, int]:
        return self._control().operations_since(self.link_proxy(link), 1 << 62)[2]

    def add_toxic(self, link: str, toxic: Mapping[str, Any]) -> JsonObject:
        return self._control().add_toxic(self.link_proxy(link), dict(toxic))

    def remove_toxic(self, link: str, name: str) -> None:
        self._control().remove_toxic(self.link_proxy(link), name)

    def set_link_enabled(self, link: str, enabled: bool) -> None:
        self._control().set_enabled(self.link_proxy(link), enabled)

    def reset_faults(self) -> None:
        """Every toxic removed, every link enabled (the rollback of isolate and chaos)."""
        if self.proxies is not None:
            self.proxies.reset()

    def start_stub(self, dependency: str, root: Path) -> str:
        """Serve `root`'s WireMock mappings in place of `dependency`; links now reach the stub."""
        from heisen.system._ports import wait_for_port
        from heisen.system._process import spawn

        running = self._dependencies.get(dependency)
        if running is None:
            raise UsageError(f"no dependency named {dependency!r} to stub")
        port = free_port()
        process = spawn(
            f"stub-{dependency}",
            [
                sys.executable,
                "-m",
                "heisen.system.stub",
                "--root",
                str(root),
                "--port",
                str(port),
                "--seed",
                str(self.seed),
                *[f"--allow-host={host}" for host in self.pipeline.allow_hosts],
            ],
            log_path=self.log_dir / f"stub-{dependency}.log",
        )
        if not wait_for_port(LOOPBACK, port, 15.0):
            process.stop()
            raise SystemUnavailable(f"the stub for {dependency} did not start:\n{process.tail()}")
        running.stub = process
        self._repoint_links(dependency, f"{LOOPBACK}:{port}")
        return f"http://{LOOPBACK}:{port}"

    def _repoint_links(self, dependency: str, upstream: str) -> None:
        """Links to `dependency` now reach `upstream`; their open connections are dropped, or a
        service's pooled keep-alive connections would go on reaching the old one."""
        control = self._control()
        for link in self._links:
            if link.endswith(f"->{dependency}"):
                control.set_upstreams(link, [upstream])
                control.set_enabled(link, False)
                control.set_enabled(link, True)

    def stop_stub(self, dependency: str) -> None:
        running = self._dependencies[dependency]
        if running.stub is None:
            return
        direct = host_port(running.address, _default_port(running.spec))
        self._repoint_links(dependency, f"{direct[0]}:{direct[1]}")
        running.stub.stop()
        running.stub = None

    def restart_dependency(self, name: str) -> None:
        running = self._dependencies.get(name)
        if running is None or running.server is None:
            raise UsageError(f"dependency {name!r} is not one heisen started: it cannot restart it")
        from heisen.system._replicas import ReplicaSet

        if isinstance(running.server, ReplicaSet):
            running.server.restart_all()
        else:
            running.server.restart()

    def describe(self) -> JsonObject:
        return {
            "services": {
                name: {
                    "url": _url(s.spec, *s.front),
                    "replicas": s.spec.replicas if s.replicas is not None else None,
                }
                for name, s in self._services.items()
            },
            "dependencies": {
                name: {"kind": d.spec.kind.value, "address": d.address}
                for name, d in self._dependencies.items()
            },
            "links": self.links(),
        }
