"""predict: a seeded agent-swarm simulation of the architecture that ranks where races will happen."""

from heisen.predict._phase import run

__all__ = ["run"]
