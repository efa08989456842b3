"""The platform under the phases: what is under test, started, reached, disturbed, stopped.

`SystemHandle` runs the system on this machine, `KubeSystem` in a Kubernetes
namespace; both implement `heisen.system_protocol.System`. The other names are
the platform's mechanisms that other packages use directly: address checks,
processes and ports, cgroups, toxics' schema, the Kubernetes objects a
pipeline becomes. Modules whose names start with `_` are private to this package.
"""

from heisen.system._addresses import check_address, is_loopback_address, loopback_problems
from heisen.system._cgroups import Cgroup, CgroupManager, Throttling
from heisen.system._handle import OWNER_FILE, SystemHandle, sweep_stale_work_dirs
from heisen.system._kube import KubeBackend, PodInfo, RolloutStatus
from heisen.system._kube_model import (
    RUN_LABEL,
    SERVICE_PORT,
    format_cpu,
    format_memory,
    kube_model,
    run_label,
)
from heisen.system._kube_render import KubeDependency, KubeService, render, render_yaml
from heisen.system._kube_system import ROLLOUT_DEADLINE_S, KubePods, KubeSystem
from heisen.system._ports import LOOPBACK, free_port, is_listening, wait_for_port
from heisen.system._postgres import EmbeddedPostgres
from heisen.system._process import ManagedProcess, live_processes, spawn, wait_until
from heisen.system._proxy_client import ProxyControl, start_proxy_daemon
from heisen.system._redis import EmbeddedRedis
from heisen.system._replicas import ReplicaSet
from heisen.system._toxics import ATTRIBUTE_MODELS, ToxicType, median_delay_ms
from heisen.system_protocol import (
    CpuThrottling,
    Enforcement,
    LinkTraffic,
    Replicas,
    ReplicaState,
    System,
    TeardownProblem,
)

__all__ = [
    "ATTRIBUTE_MODELS",
    "LOOPBACK",
    "OWNER_FILE",
    "ROLLOUT_DEADLINE_S",
    "RUN_LABEL",
    "SERVICE_PORT",
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
    "ToxicType",
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
    "spawn",
    "start_proxy_daemon",
    "sweep_stale_work_dirs",
    "wait_for_port",
    "wait_until",
]

# Checked by mypy, not at run time: both implementations satisfy the protocols the phases see.
_LOCAL: type[System] = SystemHandle
_KUBE: type[System] = KubeSystem
_LOCAL_REPLICAS: type[Replicas] = ReplicaSet
_KUBE_REPLICAS: type[Replicas] = KubePods
