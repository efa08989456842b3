"""The platform under the phases: what is under test, started, reached, disturbed, stopped.

`SystemHandle` runs the system on this machine, `KubeSystem` in a Kubernetes
namespace; both implement `heisen.system_protocol.System`. The other names are
the platform's mechanisms that other packages use directly: address checks,
processes and ports, cgroups, toxics' schema, the Kubernetes objects a
pipeline becomes. Modules whose names start with `_` are private to this package.

Each name loads its module on first use: `heisen validate` and the processes
heisen starts (the proxy daemon, the stub server) import only what they need.
"""

import importlib
from typing import TYPE_CHECKING

from heisen.system_protocol import (
    CpuThrottling,
    Enforcement,
    LinkTraffic,
    Replicas,
    ReplicaState,
    System,
    TeardownProblem,
)

_MODULES = {
    "heisen.system._addresses": ("check_address", "is_loopback_address", "loopback_problems"),
    "heisen.system._cgroups": ("Cgroup", "CgroupManager", "Throttling"),
    "heisen.system._handle": ("OWNER_FILE", "SystemHandle", "sweep_stale_work_dirs"),
    "heisen.system._kube": ("KubeBackend", "PodInfo", "RolloutStatus"),
    "heisen.system._kube_model": (
        "RUN_LABEL",
        "SERVICE_PORT",
        "format_cpu",
        "format_memory",
        "kube_model",
        "run_label",
    ),
    "heisen.system._kube_render": (
        "NAME_LABEL",
        "KubeDependency",
        "KubeService",
        "render",
        "render_yaml",
    ),
    "heisen.system._kube_agent": ("agent_job_name", "agent_objects"),
    "heisen.system._kube_system": ("ROLLOUT_DEADLINE_S", "Addresses", "KubePods", "KubeSystem"),
    "heisen.system._ports": ("LOOPBACK", "free_port", "is_listening", "wait_for_port"),
    "heisen.system._postgres": ("EmbeddedPostgres",),
    "heisen.system._process": ("ManagedProcess", "live_processes", "spawn", "wait_until"),
    "heisen.system._proxy_client": ("ProxyControl", "start_proxy_daemon"),
    "heisen.system._redis": ("EmbeddedRedis",),
    "heisen.system._replicas": ("ReplicaSet",),
    "heisen.system._tls_target": (
        "TlsSettings",
        "service_tls",
        "tls_failure_message",
        "tls_from_flags",
    ),
    "heisen.system._toxics": ("ATTRIBUTE_MODELS", "ToxicType", "median_delay_ms"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

if TYPE_CHECKING:
    from heisen.system._addresses import check_address, is_loopback_address, loopback_problems
    from heisen.system._cgroups import Cgroup, CgroupManager, Throttling
    from heisen.system._handle import OWNER_FILE, SystemHandle, sweep_stale_work_dirs
    from heisen.system._kube import KubeBackend, PodInfo, RolloutStatus
    from heisen.system._kube_agent import agent_job_name, agent_objects
    from heisen.system._kube_model import (
        RUN_LABEL,
        SERVICE_PORT,
        format_cpu,
        format_memory,
        kube_model,
        run_label,
    )
    from heisen.system._kube_render import (
        NAME_LABEL,
        KubeDependency,
        KubeService,
        render,
        render_yaml,
    )
    from heisen.system._kube_system import ROLLOUT_DEADLINE_S, Addresses, KubePods, KubeSystem
    from heisen.system._ports import LOOPBACK, free_port, is_listening, wait_for_port
    from heisen.system._postgres import EmbeddedPostgres
    from heisen.system._process import ManagedProcess, live_processes, spawn, wait_until
    from heisen.system._proxy_client import ProxyControl, start_proxy_daemon
    from heisen.system._redis import EmbeddedRedis
    from heisen.system._replicas import ReplicaSet
    from heisen.system._tls_target import (
        TlsSettings,
        service_tls,
        tls_failure_message,
        tls_from_flags,
    )
    from heisen.system._toxics import ATTRIBUTE_MODELS, ToxicType, median_delay_ms

    # Checked by mypy: both implementations satisfy the protocols the phases see.
    _LOCAL: type[System] = SystemHandle
    _KUBE: type[System] = KubeSystem
    _LOCAL_REPLICAS: type[Replicas] = ReplicaSet
    _KUBE_REPLICAS: type[Replicas] = KubePods


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'heisen.system' has no attribute {name!r}")
    value: object = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ATTRIBUTE_MODELS",
    "LOOPBACK",
    "NAME_LABEL",
    "OWNER_FILE",
    "ROLLOUT_DEADLINE_S",
    "RUN_LABEL",
    "SERVICE_PORT",
    "Addresses",
    "Cgroup",
    "CgroupManager",
    "CpuThrottling",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "Enforcement",
    "KubeBackend",
    "KubeDependency",
    "KubePods",
    "KubeService",
    "KubeSystem",
    "LinkTraffic",
    "ManagedProcess",
    "PodInfo",
    "ProxyControl",
    "ReplicaSet",
    "ReplicaState",
    "Replicas",
    "RolloutStatus",
    "System",
    "SystemHandle",
    "TeardownProblem",
    "Throttling",
    "TlsSettings",
    "ToxicType",
    "agent_job_name",
    "agent_objects",
    "check_address",
    "format_cpu",
    "format_memory",
    "free_port",
    "is_listening",
    "is_loopback_address",
    "kube_model",
    "live_processes",
    "loopback_problems",
    "median_delay_ms",
    "render",
    "render_yaml",
    "run_label",
    "service_tls",
    "spawn",
    "start_proxy_daemon",
    "sweep_stale_work_dirs",
    "tls_failure_message",
    "tls_from_flags",
    "wait_for_port",
    "wait_until",
]
