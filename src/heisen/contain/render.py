"""`heisen contain PIPELINE --render`: what the kubernetes backend would apply, as kubectl-applicable YAML.

The objects are the ones `contain` applies with `backend: kubernetes` (the
Namespace, the load agent's ServiceAccount, Role and RoleBinding, a
Deployment and a Service per dependency and per service, a ConfigMap and a
Job per PostgreSQL `init:` file), labelled with the pipeline's name instead
of a run id. Nothing is contacted while rendering: the output goes to
`kubectl apply -f -` as it is (docs/kubernetes.md). The CLI prints the
result; a missing image or an unreadable `init:` file raises PipelineError
(exit 2), every one at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from heisen._serialised import JsonObject
from heisen.contain._limits import effective_limits
from heisen.schema import ContainSection, LoadedPipeline
from heisen.system import kube_model, render, render_yaml, run_label

PIPELINE_LABEL = "heisen.dev/pipeline"


@dataclass(frozen=True, slots=True)
class Rendered:
    """The objects (Kubernetes' JSON form: a serialisation boundary) and the same as a YAML stream."""

    objects: list[JsonObject]
    yaml: str


def render_pipeline(loaded: LoadedPipeline) -> Rendered:
    """What the kubernetes backend would apply for `loaded`'s contain section."""
    section = loaded.pipeline.phases.contain or ContainSection()
    limits = effective_limits(loaded.pipeline, section.resources)
    services, dependencies = kube_model(loaded, section.namespace, limits)
    labels = {PIPELINE_LABEL: run_label(loaded.pipeline.name)}
    return Rendered(
        render(section.namespace, services, dependencies, labels),
        render_yaml(section.namespace, services, dependencies, labels),
    )
