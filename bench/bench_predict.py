"""Wall time of `heisen predict`'s swarm on the ticketing architecture.

    .venv/bin/python bench/bench_predict.py [--agents 10000] [--cycles 10000] [--seed 1] [--repeat 1]

Prints the main simulation alone (agents x cycles agent-operations) and the
whole `predict` (main run + four sensitivity runs + the smallest-load search).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from heisen.predict._architecture import load_architecture, load_incidents
from heisen.predict._predict import predict
from heisen.predict._swarm import simulate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ticketing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    architecture = load_architecture(EXAMPLE / "architecture.yaml")
    incidents = load_incidents(EXAMPLE / "incidents.yaml")
    simulate(architecture, requests=100, cycles=10, seed=0)  # build the latency tables once
    agent_ops = args.agents * args.cycles
    for _ in range(args.repeat):
        started = time.perf_counter()
        simulate(architecture, requests=args.agents, cycles=args.cycles, seed=args.seed)
        swarm = time.perf_counter() - started
        started = time.perf_counter()
        prediction = predict(
            architecture, incidents, agents=args.agents, cycles=args.cycles, seed=args.seed
        )
        whole = time.perf_counter() - started
        print(
            f"agents={args.agents} cycles={args.cycles}: swarm {swarm:.2f}s "
            f"({agent_ops / swarm / 1e6:.1f}M agent-operations/s), predict {whole:.2f}s"
        )
    top = prediction.hotspots[0]
    print(
        f"top hotspot: {top.boundary} {top.anomaly.value} ({top.operation}) rate {top.predicted_violation_rate:.3f} score {top.score:.1f}"
    )
    print(f"smallest reproducing load: {prediction.smallest_reproducing_load}")


if __name__ == "__main__":
    main()
