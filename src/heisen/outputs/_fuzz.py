"""The outputs of fuzz: the cases sent, and each failing one with how to replay it."""

from __future__ import annotations

from pydantic import Field

from heisen.outputs._base import FindingRecord, OutputModel


class FuzzFailure(OutputModel):
    """One failing case: what failed, how small it got, and the commands that replay it.

    `replay` exits 1 while the case still fails (for an invariant, it is `rerun`: the
    whole phase with the same seed); `duplicate_of` names an earlier case that failed alike.
    """

    id: str = ""
    outcome: str = ""
    label: str = ""
    payload: str = ""
    shrunk: str = ""
    detail: str = ""
    statuses: list[int] = Field(default_factory=list)
    replay: str = ""
    curl: str = ""
    shrink_attempts: int = 0
    rerun: str | None = None
    path_params: dict[str, str] | None = None
    duplicate_of: str | None = None


class FuzzOutputs(OutputModel):
    cases: int = 0
    regression: int = 0
    operation: str = ""
    failures: list[FuzzFailure] = Field(default_factory=list)
    by_outcome: dict[str, int] = Field(default_factory=dict)
    requests: int = 0
    status_codes: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    corpus: str | None = None
    seed: int = 0
    replay_base_url: str = ""
    shrink_attempts: int = 0
    findings: list[FindingRecord] = Field(default_factory=list)
