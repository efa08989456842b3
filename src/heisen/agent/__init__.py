"""heisen's load agent: a phase run where the system is, its records streamed back.

On Kubernetes the load must start inside the cluster: a burst's barrier
holds only when its requests leave from one place close to the Service, and
a Service spreads connections across replicas only when they reach it as
production traffic does. So the runner does not run a cluster phase itself:
it sends a plan (`AgentPlan`: the pipeline's files, the run so far, where
each service and dependency is) to `heisen agent`, which runs the same phase
code on a `KubeSystem` attached to those addresses and writes one JSON
record per line on stdout (`_wire`). The driver (`collect`) reads them back
from the agent's pod log, or from a local subprocess's stdout (the same
protocol, which is how the tests run it): progress and trials as events,
the load logs as artifacts, and last the phase's result or its error.
"""

from heisen.agent._cluster import run_in_cluster
from heisen.agent._drive import collect, run_local
from heisen.agent._plan import AgentPlan, plan_for
from heisen.agent._serve import serve
from heisen.system import Addresses

__all__ = ["Addresses", "AgentPlan", "collect", "plan_for", "run_in_cluster", "run_local", "serve"]
