"""The one name for untyped data, used where it crosses a serialisation boundary."""

from typing import Any

JsonObject = dict[str, Any]
"""A JSON or YAML object as it crosses a serialisation boundary: read from or written to a
file, a socket, a pipe, the Kubernetes API or the run manifest. Inside, heisen's data is
typed; this name marks the places where it is not, and says why."""
