"""Importing this module registers every command on the app, in help order."""

# isort: off
from heisen.cli import run, validate, init, schema, check, phases, isolate, verify, report, agent  # noqa: F401
