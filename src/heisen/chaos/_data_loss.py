"""After the load: every pipeline invariant, and what was acknowledged but lost.

The invariants are judged by the scenario engine's own `check_invariants`,
over every record of the chaos load, once every fault is removed: probe
invariants (sql/redis/http/python) against the system; `acknowledged:`
invariants over the load's records (a request of the named kind that
answered one of the acknowledged statuses is a write the service promised;
its `id` must be in the database; a request that failed or answered 5xx is
`unknown`, never `lost`); `history:` invariants with the oracle's checker.

`data_loss` sums the acknowledged invariants: `{acknowledged, persisted,
lost, unknown}` (all zero, with `checked: false`, when the pipeline has no
`acknowledged:` invariant).
"""

from __future__ import annotations

from collections.abc import Sequence

from heisen.oracle import Verdict
from heisen.outputs import DataLoss
from heisen.phase import PhaseContext
from heisen.schema import Invariant
from heisen.stress import RequestFactory, RequestRecord, check_invariants

HISTORY_FILE = "chaos-history.jsonl"


def judge(
    ctx: PhaseContext, records: list[RequestRecord], factory: RequestFactory
) -> tuple[list[Verdict], DataLoss]:
    """One verdict per chosen invariant, and the data-loss totals.

    A failed `acknowledged:` query raises its `ProbeError`, as it always has
    in chaos (the run is judged once: there is no later trial to go on with).
    """
    pipeline = ctx.pipeline
    assert pipeline.phases.chaos is not None, "the runner skips chaos without its section"
    assert ctx.system is not None, "chaos runs on a running system"
    chosen = pipeline.phases.chaos.invariants
    invariants = [i for i in pipeline.invariants if chosen is None or i.name in chosen]
    history_path = ctx.run_dir / HISTORY_FILE
    history_path.unlink(missing_ok=True)
    verdicts = check_invariants(
        invariants,
        pipeline=pipeline,
        system=ctx.system,
        records=records,
        sent=factory.sent,
        trial=1,
        seed=ctx.seed,
        run_dir=ctx.run_dir,
        history_path=history_path,
        probe_errors="raise",
    )
    return verdicts, data_loss(invariants, verdicts)


def data_loss(invariants: Sequence[Invariant], verdicts: Sequence[Verdict]) -> DataLoss:
    """The `acknowledged:` verdicts' counts, summed (`checked` when there was one)."""
    acknowledged = {i.name for i in invariants if i.acknowledged is not None}
    mine = [v for v in verdicts if v.name in acknowledged]
    if not mine:
        return DataLoss(acknowledged=0, persisted=0, lost=0, unknown=0, checked=False)
    return DataLoss(
        acknowledged=sum(int(v.value["acknowledged"]) for v in mine),
        persisted=sum(int(v.value["persisted"]) for v in mine),
        lost=sum(int(v.value["lost"]) for v in mine),
        unknown=sum(int(v.value["unknown"]) for v in mine),
        checked=True,
        lost_ids=[i for v in mine for i in v.value.get("lost_ids", [])],
    )
