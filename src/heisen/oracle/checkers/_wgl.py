"""Linearizability of one partition: a Wing-Gong-Lowe tree search with a state cache.

The question: is there a total order of the calls that (a) respects real
time (a call that returned before another was invoked comes first) and
(b) is a legal run of a sequential model from its initial state, with each
``ok`` call's recorded output?

How it works (after Lowe, "Testing for linearizability", as used by
Porcupine and Knossos' ``wgl``):

* Every call contributes two *entries*, its call and its return, sorted by
  time into a doubly linked list (ties: calls before returns, so calls
  touching at one instant count as concurrent; this can only accept more
  histories, never flag a correct one). Calls whose outcome is unknown
  (``info``) return at +infinity: they sit at the end of the list.
* The search walks the list from its head. At a *call* entry it tries to
  apply that call to the current model state. If the model accepts and the
  pair (set of linearized calls, new state) has not been seen before, the
  call is *lifted* out of the list (both entries unlinked, dancing-links
  style, so they can be put back in O(1)), pushed on a stack, and the walk
  restarts at the head. Otherwise the walk moves on to the next entry.
* Reaching a *return* entry means that call had to be linearized by now but
  was not: backtrack — pop the last lifted call, *unlift* it, restore the
  state, and continue just after it.
* Success when every ``ok`` call is linearized. ``info`` calls are optional:
  one not linearized never took effect, which is one of its allowed fates.
  Failure when a return entry is reached with an empty stack.
* Observers (a register's ``ok`` reads) are never branched on. An observer
  is accepted in one state only and leaves it as it was, so if the walk can
  lift it, a linearization from here exists only if one exists with the
  observer taken first (move it to the front: the calls that were before it
  see the same state, and nothing that had to precede it is still in the
  list). So when the search backtracks past an observer, the configuration
  it was lifted from has failed too, and the search backtracks past that
  one as well. Without this, every interleaving of concurrent reads with the
  writes around them was a configuration of its own: a correct register's
  100 calls at a few hundred ms of latency took millions of steps.

Invariants: the list holds exactly the calls not on the stack, in time
order; the stack holds a legal linearization of its calls; the linearized
set is a bitset (a Python int, bit = call number) and with the state it is
the key of the cache, which holds every configuration already explored.

Why it terminates: each lift adds a (bitset, state) pair never seen before
to the cache, and there are finitely many such pairs for a finite history
(the states reachable are values in the history). Each backtrack pops the
stack; each forward move advances along a finite list. The walk is also cut
by a :class:`Budget` (time and steps): then the verdict is ``None``,
unknown, never a hang.

How to extend it: a model is an ``initial`` state plus a ``step(state, call)``
returning the new state or :data:`REJECT`; states must be hashable and
compare by value. Nondeterministic models can be added by letting ``step``
return several states and lifting once per state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from heisen.oracle.checkers._budget import Budget

REJECT: Any = object()
_CHECK_EVERY = 512


@dataclass(frozen=True, slots=True)
class SearchItem:
    """One call as the search sees it: times, whether it must be linearized, its payload."""

    called: int
    returned: int | None  # None: unknown outcome, returns at +infinity, optional
    payload: Any
    observer: bool = False  # required, accepted in one state only, which it leaves unchanged


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    linearizable: bool | None
    steps: int
    blocking: int | None = None  # item that could not be linearized at the deepest point
    deepest: int = 0  # most calls linearized at once


Step = Callable[[Any, Any], Any]


def search(items: Sequence[SearchItem], initial: Any, step: Step, budget: Budget) -> SearchOutcome:
    """Decide whether ``items`` linearize under ``step`` from ``initial`` (None: budget ran out)."""
    count = len(items)
    required_total = sum(1 for item in items if item.returned is not None)
    if required_total == 0:
        return SearchOutcome(True, 0)
    infinity = (
        max(
            max(item.called for item in items),
            max((item.returned for item in items if item.returned is not None), default=0),
        )
        + 1
    )
    events = []
    for number, item in enumerate(items):
        events.append((item.called, 0, number))
        events.append((infinity if item.returned is None else item.returned, 1, number))
    events.sort()

    size = 2 * count + 1  # node 0 is the head sentinel, nodes 1..2n the entries
    nxt = list(range(1, size + 1))
    nxt[-1] = -1
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    op_of = [0] * size
    match = [0] * size
    call_node = [0] * count
    for node, (_, kind, number) in enumerate(events, start=1):
        op_of[node] = number
        if kind == 0:
            is_call[node] = True
            call_node[number] = node
        else:
            match[call_node[number]] = node
    payloads = [item.payload for item in items]
    required = [item.returned is not None for item in items]
    observer = [item.observer and item.returned is not None for item in items]

    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any]] = []
    linearized = 0
    done = 0
    state = initial
    entry = nxt[0]
    steps = 0
    deepest = 0
    blocking: int | None = None
    block_depth = -1
    while True:
        steps += 1
        if steps % _CHECK_EVERY == 0 and not budget.spend(_CHECK_EVERY):
            return SearchOutcome(None, steps, blocking, deepest)
        if entry == -1:  # only optional calls left unexplored: cannot happen while required remain
            return SearchOutcome(done == required_total, steps, blocking, deepest)
        if is_call[entry]:
            number = op_of[entry]
            new_state = step(state, payloads[number])
            if new_state is not REJECT:
                bits = linearized | (1 << number)
                if (bits, new_state) not in cache:
                    cache.add((bits, new_state))
                    stack.append((entry, state))
                    linearized = bits
                    state = new_state
                    if required[number]:
                        done += 1
                        if done == required_total:
                            budget.spend(steps % _CHECK_EVERY)
                            return SearchOutcome(True, steps, None, len(stack))
                    # lift: unlink the call entry and its return entry
                    ret = match[entry]
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    nxt[prv[ret]] = nxt[ret]
                    if nxt[ret] != -1:
                        prv[nxt[ret]] = prv[ret]
                    if len(stack) > deepest:
                        deepest = len(stack)
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        # A return entry: its call had to be linearized before this point.
        if len(stack) > block_depth:
            block_depth = len(stack)
            blocking = op_of[entry]
        last = op_of[entry]
        while True:
            if not stack:
                budget.spend(steps % _CHECK_EVERY)
                return SearchOutcome(
                    False, steps, blocking if blocking is not None else last, deepest
                )
            entry, state = stack.pop()
            number = op_of[entry]
            linearized &= ~(1 << number)
            if required[number]:
                done -= 1
            # unlift: relink the return entry, then the call entry
            ret = match[entry]
            nxt[prv[ret]] = ret
            if nxt[ret] != -1:
                prv[nxt[ret]] = ret
            nxt[prv[entry]] = entry
            prv[nxt[entry]] = entry
            if not observer[number]:
                break
            # an observer failed: so did the configuration it was lifted from (docstring)
        entry = nxt[entry]
