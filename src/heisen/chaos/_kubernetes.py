"""Chaos on Kubernetes: pod deletion through the API, network and CPU faults
through the chaos engine the cluster has.

Blast radius: only the namespace the pipeline names (`phases.chaos.namespace`)
and only pods that match its `selector` *and* carry heisen's labels
(`KubeBackend` adds them to every selector and refuses anything else).

Engines, in order of preference, found by listing their objects in the namespace
(a namespaced Role is enough; 404: not installed, 403: the Role lacks `list`):
- LitmusChaos (`chaosengines.litmuschaos.io`): one `ChaosEngine` per round, with the
  experiment's tunables as env (`TOTAL_CHAOS_DURATION`, `NETWORK_LATENCY`,
  `NETWORK_PACKET_LOSS_PERCENTAGE`, `CPU_CORES`, ...). The engine names a `ChaosExperiment`
  (pod-network-latency, pod-network-loss, pod-http-reset-peer, pod-cpu-hog) that must exist in
  the namespace, with the service account `<experiment>-sa`; both come from the Litmus hub.
- Chaos Mesh (`networkchaos.chaos-mesh.org`): a `NetworkChaos` (delay, loss, partition) or a
  `StressChaos` for pod-cpu-hog.
- neither: a SystemUnavailable that says what to install.

On the system heisen itself started in the cluster (the runner runs chaos
in its agent there), Chaos Mesh comes first: heisen's namespace is new each
run, and Litmus's ChaosExperiments would have to be installed in it first.
With Litmus alone, the experiment is looked up before the load and its
absence is an error naming it. An experiment's `link:` then limits a network
fault to the link's dependency (its Service's name), unless
`destination_hosts`/`destination_ips` say otherwise.

The renders' objects are checked against the engines' real CRDs in tests/chaos/crds/.

Each object heisen creates is deleted when its duration ends and again in the
rollback (deleting a ChaosEngine/NetworkChaos makes the engine revert the
fault). pod-delete uses the API directly, grace 0 when `force`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import threading
from typing import TYPE_CHECKING, Any

from heisen._serialised import JsonObject
from heisen.chaos._faults import Faults
from heisen.chaos._rounds import Round
from heisen.chaos._timeline import Timeline
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import ChaosSection, Experiment

if TYPE_CHECKING:
    from heisen.system import KubeBackend

LITMUS = ("litmuschaos.io", "v1alpha1", "chaosengines")
NETWORK_CHAOS = ("chaos-mesh.org", "v1alpha1", "networkchaos")
STRESS_CHAOS = ("chaos-mesh.org", "v1alpha1", "stresschaos")
INSTALL_HINT = (
    "network and CPU chaos on Kubernetes needs LitmusChaos (CRD chaosengines.litmuschaos.io: "
    "`kubectl apply -f https://litmuschaos.github.io/litmus/litmus-operator-v3.yaml`) or Chaos Mesh "
    "(CRD networkchaos.chaos-mesh.org: `helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh`); "
    "neither is installed in this cluster"
)
_MAX_NAME = 63  # engines copy an object's name into label values, which stop at 63
_LITMUS_NAMES = {
    "pod-network-latency": "pod-network-latency",
    "pod-network-loss": "pod-network-loss",
    "partition": "pod-network-loss",
    "reset-peer": "pod-http-reset-peer",
    "pod-cpu-hog": "pod-cpu-hog",
}


def _selector(selector: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def object_name(experiment: str, number: int) -> str:
    """`heisen-<experiment>-<round>`, a DNS-1123 label whatever the experiment is called; a name
    that had to change or be cut keeps a short hash of the original, so two stay apart."""
    slug = re.sub(r"[^a-z0-9]+", "-", experiment.lower()).strip("-")
    plain = f"heisen-{slug}-{number}"
    if slug == experiment and len(plain) <= _MAX_NAME:
        return plain
    suffix = f"-{hashlib.sha256(experiment.encode()).hexdigest()[:6]}-{number}"
    room = _MAX_NAME - len("heisen-") - len(suffix)
    return f"heisen-{slug[:room].rstrip('-') or 'x'}{suffix}"


def _destinations(attributes: JsonObject) -> list[str]:
    """The hosts and IPs a network fault is limited to (`destination_hosts`, `destination_ips`:
    comma-separated, as LitmusChaos takes them); empty: all traffic."""
    found: list[str] = []
    for key in ("destination_hosts", "destination_ips"):
        found += [part.strip() for part in str(attributes.get(key, "")).split(",") if part.strip()]
    return found


def _ms(attributes: JsonObject, key: str, default: int) -> int:
    if key in attributes:
        return int(attributes[key])
    if key == "latency" and "median_ms" in attributes:
        return int(attributes["median_ms"])
    return default


def render_chaos_engine(
    experiment: Experiment,
    number: int,
    namespace: str,
    selector: dict[str, str],
    labels: dict[str, str],
) -> JsonObject:
    """The LitmusChaos ChaosEngine that runs one round of `experiment`."""
    name = _LITMUS_NAMES.get(experiment.kind)
    if name is None:
        raise UsageError(f"{experiment.kind} has no LitmusChaos experiment")
    a = experiment.attributes
    env = {
        "TOTAL_CHAOS_DURATION": str(math.ceil(experiment.duration)),
        "PODS_AFFECTED_PERC": str(experiment.percentage),
        "SEQUENCE": experiment.sequence,
    }
    if experiment.kind == "pod-network-latency":
        env["NETWORK_LATENCY"] = str(_ms(a, "latency", 2000))
        env["JITTER"] = str(int(a.get("jitter", 0)))
    elif experiment.kind in ("pod-network-loss", "partition"):
        loss = 100 if experiment.kind == "partition" else int(a.get("loss", 100))
        env["NETWORK_PACKET_LOSS_PERCENTAGE"] = str(loss)
    elif experiment.kind == "reset-peer":
        env["RESET_TIMEOUT"] = str(int(a.get("timeout", 0)))
    elif experiment.kind == "pod-cpu-hog":
        env["CPU_CORES"] = str(experiment.cores)
    for key in ("DESTINATION_HOSTS", "DESTINATION_IPS", "TARGET_CONTAINER", "NETWORK_INTERFACE"):
        if key.lower() in a:
            env[key] = str(a[key.lower()])
    return {
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {
            "name": object_name(experiment.name, number),
            "namespace": namespace,
            "labels": dict(labels),
        },
        "spec": {
            "engineState": "active",
            "appinfo": {
                "appns": namespace,
                "applabel": _selector(selector),
                "appkind": "deployment",
            },
            "chaosServiceAccount": str(a.get("service_account", f"{name}-sa")),
            "jobCleanUpPolicy": "delete",
            "experiments": [
                {
                    "name": name,
                    "spec": {
                        "components": {
                            "env": [{"name": key, "value": value} for key, value in env.items()]
                        }
                    },
                }
            ],
        },
    }


def render_chaos_mesh(
    experiment: Experiment,
    number: int,
    namespace: str,
    selector: dict[str, str],
    labels: dict[str, str],
) -> JsonObject:
    """The Chaos Mesh NetworkChaos (or StressChaos for pod-cpu-hog) of one round."""
    a = experiment.attributes
    metadata = {
        "name": object_name(experiment.name, number),
        "namespace": namespace,
        "labels": dict(labels),
    }
    target = {"namespaces": [namespace], "labelSelectors": dict(selector)}
    mode = "all" if experiment.percentage == 100 else "fixed-percent"
    common: JsonObject = {
        "selector": target,
        "mode": mode,
        "duration": f"{math.ceil(experiment.duration)}s",
    }
    if mode == "fixed-percent":
        common["value"] = str(experiment.percentage)
    if experiment.kind == "pod-cpu-hog":
        spec = {**common, "stressors": {"cpu": {"workers": experiment.cores, "load": 100}}}
        return {
            "apiVersion": "chaos-mesh.org/v1alpha1",
            "kind": "StressChaos",
            "metadata": metadata,
            "spec": spec,
        }
    if experiment.kind == "pod-network-latency":
        spec = {
            **common,
            "action": "delay",
            "delay": {
                "latency": f"{_ms(a, 'latency', 2000)}ms",
                "jitter": f"{int(a.get('jitter', 0))}ms",
                "correlation": str(a.get("correlation", 0)),
            },
        }
    elif experiment.kind == "pod-network-loss":
        spec = {**common, "action": "loss", "loss": {"loss": str(int(a.get("loss", 100)))}}
    elif experiment.kind == "partition":
        spec = {**common, "action": "partition", "direction": str(a.get("direction", "both"))}
    else:
        raise UsageError(f"{experiment.kind} has no Chaos Mesh NetworkChaos action")
    if destinations := _destinations(a):
        spec["externalTargets"] = destinations
    return {
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "NetworkChaos",
        "metadata": metadata,
        "spec": spec,
    }


def detect_engine(api_client: Any, namespace: str, *, chaos_mesh_first: bool = False) -> str:
    """`litmus` or `chaos-mesh`, whichever serves its chaos objects in `namespace` (the first
    of the two that does, Litmus first unless `chaos_mesh_first`).

    Listing one object of the namespace needs only a namespaced Role, where reading the CRD
    would need a ClusterRole: 404 is an engine that is not installed, 403 a missing permission.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    custom = client.CustomObjectsApi(api_client)
    engines = [(LITMUS, "litmus"), (NETWORK_CHAOS, "chaos-mesh")]
    for (group, version, plural), engine in engines[::-1] if chaos_mesh_first else engines:
        try:
            custom.list_namespaced_custom_object(group, version, namespace, plural, limit=1)
        except (HTTPError, OSError) as exc:
            raise SystemUnavailable(
                f"cannot reach the Kubernetes API at {api_client.configuration.host} to list "
                f"{plural}.{group}: {exc}"
            ) from exc
        except ApiException as exc:
            if exc.status == 404:
                continue
            if exc.status == 403:
                raise SystemUnavailable(
                    f"Kubernetes refused to list {plural}.{group} in namespace {namespace} (403): "
                    f"heisen's account needs a Role there allowing list, create and delete on "
                    f"{plural}.{group}"
                ) from exc
            raise SystemUnavailable(
                f"cannot list {plural}.{group} in namespace {namespace}: {exc.status} {exc.reason}"
            ) from exc
        return engine
    raise SystemUnavailable(INSTALL_HINT)


class KubeInjector:
    """Faults on the pods of one namespace + selector."""

    def __init__(
        self,
        section: ChaosSection,
        faults: Faults,
        timeline: Timeline,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        backend: KubeBackend | None = None,
    ) -> None:
        """`backend`: the API of heisen's own system in the cluster (the agent's), if any;
        then an experiment's `service:` or `link:` names its pods when `selector:` is empty."""
        from heisen.system import KubeBackend

        self.own_system = backend is not None
        if not section.selector and not self.own_system:
            raise UsageError(
                "phases.chaos.selector: name the pods chaos may touch (e.g. {app: inventory})"
            )
        self.section = section
        self.faults = faults
        self.timeline = timeline
        self.backend = backend or KubeBackend(
            namespace=section.namespace, labels={}, kubeconfig=kubeconfig, context=context
        )
        self.api_client = self.backend.api_client
        self.labels = dict(self.backend.labels)
        # the chaos engines' selector is the one pod-delete uses: the section's and heisen's labels
        self.target = {**section.selector, **self.labels}
        self.warnings: list[str] = []
        self._engine: str | None = None
        self._created: list[tuple[str, str, str]] = []  # (group/version, plural, name)
        self._lock = threading.Lock()

    def target_of(self, experiment: Experiment) -> dict[str, str]:
        """The labels of the pods `experiment` hits: the section's selector, or on heisen's own
        system the Deployment of its `service:` (or of its `link:`'s service); always with
        heisen's labels."""
        if self.section.selector or not self.own_system:
            return dict(self.target)
        from heisen.system import NAME_LABEL

        service = experiment.service or (experiment.link or "").partition("->")[0].strip()
        if not service:
            raise UsageError(
                f"experiment {experiment.name}: say which pods it hits (service:, link: or "
                "phases.chaos.selector)"
            )
        return {NAME_LABEL: service, **self.labels}

    def engine(self) -> str:
        if self._engine is None:
            self._engine = detect_engine(
                self.api_client, self.section.namespace, chaos_mesh_first=self.own_system
            )
        return self._engine

    def _require_litmus_experiment(self, experiment: Experiment) -> None:
        """A ChaosEngine whose ChaosExperiment is not in the namespace never faults anything."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        name = _LITMUS_NAMES.get(experiment.kind)
        if name is None:
            return
        try:
            client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                "litmuschaos.io", "v1alpha1", self.section.namespace, "chaosexperiments", name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise SystemUnavailable(
                    f"cannot read ChaosExperiment {name} in namespace {self.section.namespace}: "
                    f"{exc.status} {exc.reason}"
                ) from exc
            fresh = " (heisen creates it for each run: install Chaos Mesh instead)"
            raise SystemUnavailable(
                f"{experiment.name}: LitmusChaos has no ChaosExperiment {name} in namespace "
                f"{self.section.namespace}{fresh if self.own_system else ''}; install it and its "
                f"service account {name}-sa from the Litmus hub"
            ) from exc

    def with_link_destination(self, experiment: Experiment) -> Experiment:
        """On heisen's own system, a `link:` network fault hits only the link's dependency."""
        attributes = experiment.attributes
        if not (self.own_system and experiment.link) or _destinations(attributes):
            return experiment
        dependency = experiment.link.partition("->")[2].strip()
        return experiment.model_copy(
            update={"attributes": {**attributes, "destination_hosts": dependency}}
        )

    def check(self, experiment: Experiment) -> None:
        if experiment.kind == "dependency-restart":
            raise UsageError(
                "dependency-restart needs a dependency heisen started (backend: local)"
            )
        if experiment.kind not in ("pod-delete", "container-kill"):
            if self.engine() == "litmus":
                self._require_litmus_experiment(experiment)

    def inject(self, round_: Round) -> list[str]:
        experiment, number = round_.experiment, round_.number
        if experiment.kind in ("pod-delete", "container-kill"):
            return self._delete_pods(round_)
        target = self.target_of(experiment)
        experiment = self.with_link_destination(experiment)
        if self.engine() == "litmus":
            obj = render_chaos_engine(
                experiment, number, self.section.namespace, target, self.labels
            )
            where = LITMUS
        else:
            obj = render_chaos_mesh(experiment, number, self.section.namespace, target, self.labels)
            where = STRESS_CHAOS if obj["kind"] == "StressChaos" else NETWORK_CHAOS
        name = obj["metadata"]["name"]
        began = self.timeline.now()
        applied = self.faults.apply(
            f"{experiment.name}: {obj['kind']} {name}",
            lambda: self._create(where, obj),
            lambda: self._delete(where, name),
        )
        if applied is None:
            return []
        self.timeline.add(
            "inject",
            f"{obj['kind']} {name} for {experiment.duration:g}s",
            experiment=experiment.name,
        )
        try:
            round_.stop.wait(experiment.duration)
        finally:
            self.faults.remove(applied[0])
            round_.active(began, self.timeline.now())
        return [f"{self.section.namespace}/{_selector(target)}"]

    def _delete_pods(self, round_: Round) -> list[str]:
        experiment = round_.experiment
        pods = self.backend.list_pods(self.target_of(experiment))
        if not pods:
            return []
        wanted = max(1, math.ceil(len(pods) * experiment.percentage / 100))
        chosen = round_.rng.sample(pods, min(wanted, len(pods)))
        grace = 0 if experiment.force else int(experiment.grace)
        began = self.timeline.now()
        names: list[str] = []
        for pod in chosen:
            names.extend(self.backend.delete_pod(pod.name, grace_period_s=grace))
            self.timeline.add(
                "inject", f"deleted pod {pod.name} (grace {grace}s)", experiment=experiment.name
            )
        round_.active(began, self.timeline.now())
        return names

    def _create(self, where: tuple[str, str, str], obj: JsonObject) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        group, version, plural = where
        try:
            client.CustomObjectsApi(self.api_client).create_namespaced_custom_object(
                group, version, self.section.namespace, plural, obj
            )
        except ApiException as exc:
            raise SystemUnavailable(
                f"could not create {obj['kind']} {obj['metadata']['name']}: "
                f"{exc.status} {exc.reason}"
            ) from exc
        with self._lock:
            self._created.append((f"{group}/{version}", plural, obj["metadata"]["name"]))

    def _delete(self, where: tuple[str, str, str], name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        group, version, plural = where
        with contextlib.suppress(ApiException):
            client.CustomObjectsApi(self.api_client).delete_namespaced_custom_object(
                group, version, self.section.namespace, plural, name
            )
        with self._lock:
            self._created = [c for c in self._created if c[2] != name]

    def rollback(self) -> None:
        with self._lock:
            created = list(self._created)
        for group_version, plural, name in created:
            group, version = group_version.split("/")
            self._delete((group, version, plural), name)
