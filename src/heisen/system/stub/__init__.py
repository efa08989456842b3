"""A WireMock-compatible stub server that injects latency and faults.

The `isolate` phase puts it in place of a dependency (a payments API, say) to
widen the timing window of a race. It reads WireMock mapping trees as they
are (`ROOT/mappings/*.json|yaml`, bodies in `ROOT/__files/`) and answers
WireMock's admin API, so it also runs on its own as a drop-in for WireMock
standalone: `python -m heisen.system.stub --root DIR --port P --seed S`.

What it does differently from WireMock, on purpose: scenario transitions are
atomic under concurrency, the request journal is capped, delays are sampled
as floats from a seeded RNG and never hold a thread.
"""

from heisen.system.stub._mappings import Mapping, load_mappings
from heisen.system.stub._serve import serve
from heisen.system.stub._server import StubServer

__all__ = ["Mapping", "StubServer", "load_mappings", "serve"]
