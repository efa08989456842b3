"""`heisen contain PIPELINE --render`: what the kubernetes backend would apply, as kubectl-applicable YAML.

The objects are the ones `contain` applies with `backend: kubernetes` (the
Namespace, then a Deployment and a Service per dependency and per service),
labelled with the pipeline's name instead of a run id. Nothing is contacted:
`heisen contain pipeline.yaml --render | kubectl apply -f -` works offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from heisen.errors import EXIT_OK


def render_pipeline(pipeline_path: Path) -> int:
    """Write the YAML stream to stdout and return the exit code; missing images raise PipelineError (2)."""
    from heisen.contain._kubernetes import kube_model, run_label
    from heisen.pipeline import ContainSection, load_pipeline
    from heisen.system._kube_render import render_yaml

    loaded = load_pipeline(pipeline_path)
    section = loaded.pipeline.phases.contain or ContainSection()
    services, dependencies = kube_model(loaded, section)
    labels = {"heisen.dev/pipeline": run_label(loaded.pipeline.name)}
    sys.stdout.write(render_yaml(section.namespace, services, dependencies, labels))
    sys.stdout.flush()
    return EXIT_OK
