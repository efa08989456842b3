"""The outputs of fuzz: the cases sent, and each failing one with how to replay it."""

from __future__ import annotations

from pydantic import Field

from heisen.outputs._base import FindingRecord, OutputModel


class FuzzFailure(OutputModel):
    """One distinct bug: the case that shows it, how small it got, how many cases hit it, and
    the commands that replay it.

    `signature` is what makes two failures the same bug (outcome, status, error shape and
    `field`, the field the case changed; None when it changed several); `hits` counts the cases
    that failed with it and `cases` lists their ids (the example, `id`, first; at most 20).
    `body_file` is the shrunk body as sent, relative to the run dir (`fuzz/<id>.json`, which
    `curl` reads); `conforming` says whether that body is one the OpenAPI document allows (set
    only when the operation documents a JSON body). `replay` exits 1 while the case still fails
    (for an invariant, it is `rerun`: the whole phase with the same seed). `duplicate_of` is
    read from manifests of earlier versions, which listed every failing case and named there
    the earlier one that failed alike.
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
    signature: str = ""
    field: str | None = None
    hits: int = 1
    cases: list[str] = Field(default_factory=list)
    body_file: str | None = None
    conforming: bool | None = None
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
