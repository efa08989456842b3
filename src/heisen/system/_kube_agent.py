"""The objects that run heisen's load agent for one phase: its plan in a ConfigMap, and a Job.

The Job runs `heisen agent --plan /heisen/plan/plan.json` once (no retries:
a second attempt would send the load twice), as the `heisen-agent` service
account whose Role is limited to the namespace, and carries heisen's labels
so the namespace's deletion (and only it) takes it away.
"""

from __future__ import annotations

from collections.abc import Mapping

from heisen._serialised import JsonObject
from heisen.system._kube_render import NAME_LABEL, PULL_POLICY, validate

AGENT_NAME = "heisen-agent"
PLAN_DIR = "/heisen/plan"
AGENT_DEADLINE_S = 3600  # the Job's activeDeadlineSeconds: no agent outlives an hour


def agent_job_name(phase: str) -> str:
    return f"{AGENT_NAME}-{phase}"


def agent_objects(
    namespace: str, labels: Mapping[str, str], phase: str, plan_json: str, image: str
) -> list[JsonObject]:
    name = agent_job_name(phase)
    own = {**labels, NAME_LABEL: AGENT_NAME}
    metadata = {"name": name, "namespace": namespace, "labels": dict(own)}
    config_map: JsonObject = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": dict(metadata),
        "data": {"plan.json": plan_json},
    }
    job: JsonObject = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": dict(metadata),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": AGENT_DEADLINE_S,
            "template": {
                "metadata": {"labels": dict(own)},
                "spec": {
                    "serviceAccountName": AGENT_NAME,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "imagePullPolicy": PULL_POLICY,
                            "command": ["heisen", "agent", "--plan", f"{PLAN_DIR}/plan.json"],
                            "env": [
                                {"name": "PYTHONUNBUFFERED", "value": "1"},
                                {"name": "NO_COLOR", "value": "1"},
                            ],
                            "volumeMounts": [
                                {"name": "plan", "mountPath": PLAN_DIR, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "plan", "configMap": {"name": name}}],
                },
            },
        },
    }
    for obj in (config_map, job):
        validate(obj)
    return [config_map, job]
