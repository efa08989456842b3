"""What docs/pipeline.md says beyond the keys: what the models' values mean once heisen runs.

Each paragraph states what a module elsewhere does (named beside it), so that
whoever changes that behaviour finds the text to change; the reference test
checks the names it lists (toxic types, history operations, template roots).
"""

NOTES = """
## What `expect:` can read

An invariant's `expect:` is an expression over the values its probe gives:

| probe | values |
|---|---|
| `sql:` | the first row's columns by name (`sold`, `capacity`), `rows` (every row, a list of mappings) and `rowcount` |
| `redis:` | `value`: the command's reply, bytes decoded to text, then to an integer when it is one |
| `http:` | `status`, `body` (the parsed JSON, else the text) and `headers` (names in lower case) |
| `python:` | the mapping the function returns, else `value` (whatever else it returned); the function may take the keyword arguments `deps`, `services`, `run_dir`, `trial` and `seed` |

After a trial of load (stress, isolate, contain, chaos), `expect:` and
`severity:` also read `load`, what the trial's load did, per scenario request
(`load.<request>`) and in all (`load.total`):

| value | meaning |
|---|---|
| `sent` | requests written to a connection (refused connections count as sent attempts that failed) |
| `ok` | answered 2xx |
| `failed` | certainly failed: answered 1xx, 3xx, 4xx or 5xx, or no connection could be opened |
| `info` | outcome unknown (timeout, reset, closed, protocol error after the request was written): it may have taken effect |
| `queued` | never written (still waiting when the step ended): certainly not taken effect |
| `status` | answers by status code, keys are strings: `load.redeem.status["201"]` |
| `replicas` | the same counts per replica that served them, keyed by the replica's index as a string: `load.redeem.replicas["0"].ok` |

So `sent == ok + failed + info`. Example: `sold <= capacity and sold == load.checkout.ok`.

## History models

`history:` on an invariant checks the operations recorded from the requests
that carry `history:` (`f`, `key`, `value`); `heisen verify --model` checks a
history file with the same checkers. A 2xx completes an operation `ok`, a 4xx
`fail` (it certainly did not take effect); a 5xx, timeout or reset completes a
write `info` (it may have taken effect) and a read `fail`.

| model | operations (`f`) | what holds |
|---|---|---|
| `register` | `read`, `write` | linearizable per key: a read returns the last value written (initially `null`) |
| `cas-register` | `read`, `write`, `cas` | as `register`; `cas [old, new]` sets `new` when the register holds `old` (an `ok` cas succeeded, a `fail` one did not take effect) |
| `counter` | `add`, `read` | every read lies between what the adds certainly and possibly applied by then (`add n`, negative allowed; starts at `initial`, 0) |
| `set` | `add`, `read` | a grow-only set: no element known present is missing from a later read (`lost`), no read holds an element nobody added (`unexpected`) |
| `rate` (`{model: rate, limit, window, per}`) | the one `f` named, else the one recorded | at most `limit` `ok` operations per key (or per replica) in any window of `window` |

## Templates

Values may hold `{{ ... }}` placeholders: dotted names, integer arithmetic
(`+ - * // %`, parentheses), `choice([...])` over literal strings and integers
(drawn from the run seed and the request index, so a replay sends the same),
and `env.NAME` with an optional `| default("x")`. A value that is a single
placeholder keeps its type (`qty: "{{ i + 1 }}"` is an integer).

| where | names |
|---|---|
| scenario requests, setup `http:` steps, invariants' `http:` | `i` (the request's index in the trial), `trial`, `seed`, `run_id`, `faker.<provider>` (a Faker `en_US` provider called with no arguments: `faker.user_name`, `faker.email`), `env.NAME`, `choice([...])` |
| services' and dependencies' `env:` and `command:` | `deps.<name>.dsn`, `.url`, `.host`, `.port`; `services.<name>.url`, `.host`, `.port`; `python` (the interpreter running heisen), `run_dir`, `seed`, `replica` (the replica's index), `env.NAME` |

## Errors, and what `expect_status` changes

A phase's `errors` (in the manifest, and the `errors` threshold) counts the
requests that got no answer, by kind: `timeout`, `reset`, `refused`, `closed`,
`protocol`. An answer of any status is not an error there; `status_codes`
counts the answers. The threshold `errors < 1%` adds the 5xx answers to those
failures, over all requests.

`expect_status` on a setup `http:` call: an answer not in it (default: 200
to 399) stops the trial with an error naming the step. On a scenario
request: the statuses that count as `ok` in `load.<request>` and
`load.total` (and the phase's `outcomes`); any other answer is `failed`
(default: 2xx is `ok`). A 409 "sold out" the scenario expects is then not a
failure (`expect_status: [200, 409]`), and an invariant can still tell them
apart (`load.buy.status["409"]`). It changes neither `errors` nor the
`errors` threshold above.

## Replica kills (chaos)

`pod-delete` sends the whole process group of `percentage`% of the service's
replicas (at least one) SIGKILL when `force: true`, else SIGTERM and, after
`grace`, SIGKILL. `container-kill` sends SIGKILL to the replica's main
process only. Either way the supervisor restarts a dead replica like a
ReplicaSet with restart policy Always: after a backoff of 0.2 s, doubling up
to 5 s, reset once the replica has stayed ready for 10 s, on a new port; the
front proxy sends traffic only to ready replicas. `sequence: serial` kills one
replica and waits for its replacement to be ready before the next;
`parallel` kills them all at once. `dependency-restart` restarts an embedded
PostgreSQL or Redis.

## Toxics

A toxic (isolate's `toxics:`, chaos's network experiments) acts on the bytes of
one link, `service->dependency`, through heisen's proxy; the fields are
Toxiproxy's. `toxicity` is the share of connections it applies to.

`stream` says which direction it slows or breaks: `downstream` (the default)
is what the dependency sends back to the service, `upstream` what the service
sends to the dependency.

| type | attributes |
|---|---|
| `latency` | `latency` (ms) and `jitter` (ms, uniform ±), or `distribution` with its parameters (below); `max_ms` caps a delay |
| `bandwidth` | `rate`: KB/s (1 KB = 1000 bytes), 0 = unlimited |
| `slow_close` | `delay`: ms before a close is passed on |
| `timeout` | `timeout`: data stops (swallowed) and the link is closed after that many ms; 0 = never closed, the connection hangs |
| `reset_peer` | `timeout`: ms before both peers get a TCP RST |
| `slicer` | `average_size`, `size_variation` (bytes), `delay` (µs between slices) |
| `limit_data` | `bytes`: that many bytes pass, then the link is closed |

Latency distributions (`distribution:` and what each needs):

| distribution | attributes |
|---|---|
| `fixed` | `median_ms` |
| `uniform` | `lower_ms`, `upper_ms` |
| `normal` | `mean_ms`, `stddev_ms` |
| `lognormal` | `median_ms`, `sigma` |

Example: `{link: inventory->redis, type: latency, attributes: {distribution: lognormal, median_ms: 80, sigma: 0.4, max_ms: 400}}`.
"""
