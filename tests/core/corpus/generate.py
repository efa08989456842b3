"""Writes the malformed-pipeline corpus: small mutations of known-good pipelines.

    .venv/bin/python tests/core/corpus/generate.py     (rewrites NNN-*.yaml here)

Each case is one edit of a base pipeline (the counter test pipeline, the
ticketing example): `old` replaced by `new`. The expected line is where the
edit put `at` (default: `new`), counted in the written file, so it does not
come from the validator under test. Every file starts with its expectation:

    # expect: exit 2, path: phases.stress.thresholds[0], line: 40

`path: <document>` is a problem of the whole file; `line: -` has no line.
`# pending: <what>` marks a case another change makes pass (skipped until then).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
TICKETING = "../../../examples/ticketing"


def _counter() -> str:
    text = (ROOT / "tests/core/counter/pipeline.yaml").read_text()
    return text.replace("init: schema.sql", "init: ../counter/schema.sql")


def _ticketing() -> str:
    """The ticketing example with predict on its architecture model, so that the cases can
    break both files predict reads (observe mode reads none)."""
    text = (ROOT / "examples/ticketing/pipeline.yaml").read_text()
    body = text[text.index("apiVersion:") :]
    predict = body[body.index("  predict:") : body.index("    agents: 250")]
    body = body.replace(
        predict, "  predict:\n    architecture: architecture.yaml\n    incidents: incidents.yaml\n"
    )
    for name in ("schema.sql", "architecture.yaml", "incidents.yaml", "openapi.yaml"):
        body = body.replace(f": {name}", f": {TICKETING}/{name}")
    return body.replace("stub: stubs ", f"stub: {TICKETING}/stubs ")


BASES = {"counter": _counter(), "ticketing": _ticketing()}


@dataclass(frozen=True)
class Case:
    slug: str
    base: str
    old: str
    new: str
    path: str = "<document>"
    at: str | None = None
    exit: int = 2
    pending: str = ""
    line: int | str | None = "auto"  # "auto": where `at` lands; None: no line


def C(slug: str, old: str, new: str, path: str = "<document>", **kw: object) -> Case:
    return Case(slug, "counter", old, new, path, **kw)  # type: ignore[arg-type]


def T(slug: str, old: str, new: str, path: str = "<document>", **kw: object) -> Case:
    return Case(slug, "ticketing", old, new, path, **kw)  # type: ignore[arg-type]


HEALTH = "health: {path: /health, timeout: 20s}"
TRIALS = "    trials: 3\n"
BURST = "burst: {requests: 40}"
MODE = "      MODE: buggy"
JSON = "      json: {by: 1}"
RES = "    " + HEALTH


def health(slug: str, value: str) -> Case:
    return C(
        slug,
        HEALTH,
        f"health: {{path: /health, timeout: {value}}}",
        "services.counter.health.timeout",
    )


def stress(slug: str, line: str, path: str, at: str | None = None) -> Case:
    return C(slug, TRIALS, TRIALS + line + "\n", path, at=at or line.strip().split(":")[0] + ":")


def burst(slug: str, step: str, path: str) -> Case:
    return C(slug, BURST, step, path)


def resources(slug: str, value: str, path: str) -> Case:
    return C(slug, RES, f"{RES}\n    resources: {value}", path, at="resources:")


def body(slug: str, value: str, path: str = "scenario.requests.incr.json.by") -> Case:
    return C(slug, JSON, f"      json: {{by: {value}}}", path)


def env(slug: str, value: str, path: str = "services.counter.env.MODE") -> Case:
    return C(slug, MODE, f"      MODE: {value}", path)


ISOLATE_ATTRS = "attributes: {distribution: lognormal, median_ms: 2, sigma: 0.5}"
CHAOS_ATTRS = "attributes: {distribution: lognormal, median_ms: 10, sigma: 0.5}"
KILL = "{name: kill-inventory, kind: pod-delete, service: inventory, count: 2, interval: 6s, start: 500ms}"
PROBE = "{name: available, http: GET /health, mode: Continuous, interval: 1s, availability: 0.8, tolerance: 0.1}"
MIX = "- constant: {copies: 3, during: 300ms, mix: {update: 1, read: 3}}"
REDIS_LINK = "      - link: inventory->redis\n"
TOXIC = REDIS_LINK + "        type: latency\n"
IS = "phases.isolate.toxics[0]"
EX0, EX1 = "phases.chaos.experiments[0]", "phases.chaos.experiments[1]"
PR1 = "phases.chaos.probes[1]"
CHECKOUT = '      json: {user: "{{ faker.user_name }}", qty: 1}'
FUZZ = "  fuzz:\n    request: checkout\n"
ST = "phases.stress"


def kill(slug: str, old: str, new: str, path: str) -> Case:
    return T(slug, KILL, KILL.replace(old, new), f"{EX0}.{path}", at=new)


def probe(slug: str, old: str, new: str, path: str) -> Case:
    return T(slug, PROBE, PROBE.replace(old, new), f"{PR1}.{path}", at=new)


def mix(slug: str, value: str, path: str, at: str | None = None) -> Case:
    return T(slug, MIX, f"- constant: {{copies: 3, during: 300ms, mix: {value}}}", path, at=at)


CASES: list[Case] = [
    # --- durations: finite, 1 ms to 24 h
    health("health-timeout-inf", ".inf"),
    health("health-timeout-zero", "0s"),
    health("health-timeout-1e400", "1.0e+400"),
    health("health-timeout-nan", ".nan"),
    health("health-timeout-huge-hours", "99999999999999999h"),
    health("health-timeout-negative", "-5s"),
    health("health-timeout-25h", "25h"),
    health("health-timeout-microseconds", "500us"),
    health("health-timeout-bool", "true"),
    health("health-timeout-list", "[1, 2]"),
    health("health-timeout-parsecs", "5 parsecs"),
    health("health-timeout-400-digits", "9" * 400 + "s"),
    C(
        "scenario-timeout-zero",
        "  load:\n",
        "  timeout: 0s\n  load:\n",
        "scenario.timeout",
        at="timeout: 0s",
    ),
    C(
        "scenario-timeout-inf",
        "  load:\n",
        "  timeout: .inf\n  load:\n",
        "scenario.timeout",
        at="timeout: .inf",
    ),
    C(
        "scenario-timeout-negative-number",
        "  load:\n",
        "  timeout: -1\n  load:\n",
        "scenario.timeout",
        at="timeout: -1",
    ),
    C(
        "scenario-timeout-huge-int",
        "  load:\n",
        "  timeout: " + "9" * 320 + "\n  load:\n",
        "scenario.timeout",
        at="timeout: 9",
    ),
    # --- counts
    stress("workers-negative", "    workers: -3", f"{ST}.workers"),
    stress("workers-zero", "    workers: 0", f"{ST}.workers"),
    stress("workers-huge", "    workers: 100000", f"{ST}.workers"),
    stress("workers-word", "    workers: many", f"{ST}.workers"),
    C("trials-zero", TRIALS, "    trials: 0\n", f"{ST}.trials"),
    C("trials-negative", TRIALS, "    trials: -1\n", f"{ST}.trials"),
    C("trials-float-huge", TRIALS, "    trials: 1e9\n", f"{ST}.trials"),
    C("trials-over-cap", TRIALS, "    trials: 10001\n", f"{ST}.trials"),
    C("trials-word", TRIALS, "    trials: three\n", f"{ST}.trials"),
    C("trials-inf", TRIALS, "    trials: .inf\n", f"{ST}.trials"),
    C("trials-fraction", TRIALS, "    trials: 2.5\n", f"{ST}.trials"),
    burst("burst-zero", "burst: {requests: 0}", "scenario.load[0].burst.requests"),
    burst("burst-over-cap", "burst: {requests: 10001}", "scenario.load[0].burst.requests"),
    burst("burst-negative", "burst: {requests: -40}", "scenario.load[0].burst.requests"),
    burst("burst-fraction", "burst: {requests: 4.5}", "scenario.load[0].burst.requests"),
    burst("burst-nan", "burst: {requests: .nan}", "scenario.load[0].burst.requests"),
    C("replicas-zero", "replicas: 2", "replicas: 0", "services.counter.replicas"),
    C("replicas-over-cap", "replicas: 2", "replicas: 65", "services.counter.replicas"),
    C("replicas-negative", "replicas: 2", "replicas: -2", "services.counter.replicas"),
    C("seed-negative", "seed: 7", "seed: -1", "seed"),
    C("seed-past-64-bits", "seed: 7", "seed: 18446744073709551616", "seed"),
    C("seed-int-tag-on-text", "seed: 7", 'seed: !!int "abc"', "seed"),
    C("seed-inf", "seed: 7", "seed: .inf", "seed"),
    C("seed-5000-digits", "seed: 7", "seed: " + "9" * 5000, "seed"),
    # --- sweep: bounded, and able to run
    stress("sweep-max-1e9", "    sweep: {max: 1e9}", f"{ST}.sweep.max", at="sweep:"),
    stress("sweep-max-billion", "    sweep: {max: 1000000000}", f"{ST}.sweep.max", at="sweep:"),
    stress("sweep-factor-one", "    sweep: {factor: 1.0}", f"{ST}.sweep.factor", at="sweep:"),
    stress("sweep-factor-inf", "    sweep: {factor: .inf}", f"{ST}.sweep.factor", at="sweep:"),
    stress("sweep-start-zero", "    sweep: {start: 0}", f"{ST}.sweep.start", at="sweep:"),
    stress(
        "sweep-start-above-max", "    sweep: {start: 500, max: 100}", f"{ST}.sweep", at="sweep:"
    ),
    stress(
        "sweep-too-many-trials",
        "    sweep: {factor: 1.001, max: 10000, trials: 100}",
        f"{ST}.sweep",
        at="sweep:",
    ),
    stress("sweep-trials-zero", "    sweep: {trials: 0}", f"{ST}.sweep.trials", at="sweep:"),
    stress(
        "sweep-unknown-request", "    sweep: {request: incr2}", f"{ST}.sweep.request", at="sweep:"
    ),
    # --- CPU and memory a machine can honour
    resources("cpu-1m", "{cpu: 1m}", "services.counter.resources.cpu"),
    resources("cpu-9m", "{cpu: 9m}", "services.counter.resources.cpu"),
    resources("cpu-zero", "{cpu: 0}", "services.counter.resources.cpu"),
    resources("cpu-inf", "{cpu: .inf}", "services.counter.resources.cpu"),
    resources("cpu-2000-cores", "{cpu: 2000}", "services.counter.resources.cpu"),
    resources("cpu-negative", "{cpu: -1}", "services.counter.resources.cpu"),
    resources("cpu-word", "{cpu: lots}", "services.counter.resources.cpu"),
    resources("memory-1ki", "{memory: 1Ki}", "services.counter.resources.memory"),
    resources("memory-zero", "{memory: 0}", "services.counter.resources.memory"),
    resources("memory-2ti", "{memory: 2Ti}", "services.counter.resources.memory"),
    resources("memory-word", "{memory: lots}", "services.counter.resources.memory"),
    resources("memory-float-inf", "{memory: 1e400}", "services.counter.resources.memory"),
    resources("resources-unknown-key", "{cpus: 1}", "services.counter.resources.cpus"),
    # --- thresholds parse at validate
    stress(
        "threshold-banana",
        '    thresholds: ["p99 < banana"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    stress(
        "threshold-nan", '    thresholds: ["p99 < nan"]', f"{ST}.thresholds[0]", at="thresholds:"
    ),
    stress(
        "threshold-inf-percent",
        '    thresholds: ["errors < inf%"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    stress(
        "threshold-rps-word",
        '    thresholds: ["rps > lots"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    stress(
        "threshold-unknown-metric",
        '    thresholds: ["p100 < 1s"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    stress("threshold-empty", '    thresholds: [""]', f"{ST}.thresholds[0]", at="thresholds:"),
    stress("threshold-number", "    thresholds: [5]", f"{ST}.thresholds[0]", at="thresholds:"),
    stress(
        "threshold-second-bad",
        '    thresholds: ["p99 < 1s", "errors <"]',
        f"{ST}.thresholds[1]",
        at="thresholds:",
    ),
    stress(
        "threshold-no-operator",
        '    thresholds: ["p99 1s"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    stress(
        "threshold-rps-1e400",
        '    thresholds: ["rps > 1e400"]',
        f"{ST}.thresholds[0]",
        at="thresholds:",
    ),
    # --- NUL bytes in any string
    env("env-nul", '"bug\\0gy"'),
    env("env-nul-hex", '"bug\\x00gy"'),
    env("env-nul-unicode", '"\\u0000"'),
    C("path-nul", "      path: /incr", '      path: "/in\\0cr"', "scenario.requests.incr.path"),
    C(
        "header-nul",
        "      path: /incr",
        '      path: /incr\n      headers: {X-Test: "a\\0b"}',
        "scenario.requests.incr.headers.X-Test",
        at="headers:",
    ),
    body("json-nul", '"\\0"'),
    C(
        "command-nul",
        '"counter_service.py"]',
        '"counter\\0_service.py"]',
        "services.counter.command[1]",
        at="command:",
    ),
    C("sql-nul", 'sql: "SELECT', 'sql: "SELECT \\0', "invariants[0].sql"),
    C("env-key-nul", MODE, MODE + '\n      "A\\0B": x', "services.counter.env", at='"A'),
    C("name-nul", "name: counter-lost-update", 'name: "counter\\0"', "name"),
    C(
        "setup-path-nul",
        "path: /reset}",
        'path: "/re\\0set"}',
        "scenario.setup[0].http.path",
        at="- http:",
    ),
    # --- templates
    body("faker-typo", '"{{ faker.user_nme }}"'),
    body("faker-dunder-class", '"{{ faker.__class__ }}"'),
    body("i-dunder-class", '"{{ i.__class__ }}"'),
    body("i-attribute", '"{{ i.real }}"'),
    body("faker-group", '"{{ faker }}"'),
    body("faker-seed-instance", '"{{ faker.seed_instance }}"'),
    body("faker-binary-bytes", '"{{ faker.binary }}"'),
    body("faker-provider-attribute", '"{{ faker.pyfloat.real }}"'),
    body("dunder-import", '"{{ __import__ }}"'),
    body("faker-call-syntax", '"{{ faker.user_name() }}"'),
    body("unbalanced-braces", '"{{ i }"'),
    body("template-expression", '"{{ i ** 1000000 }}"'),
    body("template-underscore-part", '"{{ faker._factories }}"'),
    body("template-unknown-root", '"{{ os.environ }}"'),
    body("template-in-list", '["{{ i }}", "{{ faker.nme }}"]', "scenario.requests.incr.json.by[1]"),
    env("env-dsn-dunder", '"{{ deps.postgres.dsn.__class__ }}"'),
    env("env-dep-password", '"{{ deps.postgres.password }}"'),
    env("env-seed-attribute", '"{{ seed.x }}"'),
    env("env-unknown-dep", '"{{ deps.mysql.dsn }}"'),
    env("env-faker-in-service", '"{{ faker.name }}"'),
    C(
        "path-template-typo",
        "      path: /incr",
        '      path: "/incr/{{ faker.uuid5 }}/{{ trial.x }}"',
        "scenario.requests.incr.path",
    ),
    # --- load models: finite, bounded rates and durations
    burst(
        "ramp-to-inf",
        "ramp_inject: {from: 1, to: .inf, during: 2s}",
        "scenario.load[0].ramp_inject.to",
    ),
    burst(
        "ramp-to-1e400",
        "ramp_inject: {from: 1, to: 1.0e+400, during: 2s}",
        "scenario.load[0].ramp_inject.to",
    ),
    burst(
        "ramp-from-negative",
        "ramp_inject: {from: -1, to: 10, during: 2s}",
        "scenario.load[0].ramp_inject.from",
    ),
    burst(
        "ramp-to-zero",
        "ramp_inject: {from: 1, to: 0, during: 2s}",
        "scenario.load[0].ramp_inject.to",
    ),
    burst(
        "ramp-during-zero",
        "ramp_inject: {from: 1, to: 10, during: 0s}",
        "scenario.load[0].ramp_inject.during",
    ),
    burst(
        "ramp-from-nan",
        "ramp_inject: {from: .nan, to: 10, during: 2s}",
        "scenario.load[0].ramp_inject.from",
    ),
    burst("inject-rate-nan", "inject: {rate: .nan, during: 2s}", "scenario.load[0].inject.rate"),
    burst(
        "inject-rate-over-cap",
        "inject: {rate: 2000000, during: 2s}",
        "scenario.load[0].inject.rate",
    ),
    burst(
        "inject-during-inf", "inject: {rate: 10, during: .inf}", "scenario.load[0].inject.during"
    ),
    burst("inject-rate-string", "inject: {rate: fast, during: 2s}", "scenario.load[0].inject.rate"),
    burst(
        "constant-copies-zero",
        "constant: {copies: 0, during: 1s}",
        "scenario.load[0].constant.copies",
    ),
    burst(
        "constant-during-25h",
        "constant: {copies: 2, during: 25h}",
        "scenario.load[0].constant.during",
    ),
    burst("pause-zero", "pause: {during: 0s}", "scenario.load[0].pause.during"),
    C(
        "two-models-one-step",
        BURST,
        "burst: {requests: 4}\n      pause: {during: 1s}",
        "scenario.load[0]",
        at="burst: {requests: 4}",
    ),
    burst(
        "burst-unknown-request",
        "burst: {requests: 4, request: nope}",
        "scenario.load[0].burst.request",
    ),
    # --- mixes that can never send one of their requests
    mix(
        "mix-weight-nan",
        "{update: .nan, read: 3}",
        "scenario.load[1].constant.mix.update",
        at="mix:",
    ),
    mix(
        "mix-weight-zero", "{update: 0, read: 3}", "scenario.load[1].constant.mix.update", at="mix:"
    ),
    mix(
        "mix-weight-negative",
        "{update: -1, read: 3}",
        "scenario.load[1].constant.mix.update",
        at="mix:",
    ),
    mix(
        "mix-weight-inf",
        "{update: .inf, read: 3}",
        "scenario.load[1].constant.mix.update",
        at="mix:",
    ),
    mix(
        "mix-weight-word",
        "{update: heavy, read: 3}",
        "scenario.load[1].constant.mix.update",
        at="mix:",
    ),
    mix(
        "mix-share-below-one-percent",
        "{update: 1, read: 1000}",
        "scenario.load[1].constant",
        at="{copies",
    ),
    mix("mix-missing-request", "{update: 1, reed: 3}", "scenario.load[1].constant.mix", at="mix:"),
    mix("mix-empty", "{}", "scenario.load[1].constant", at="{copies"),
    T(
        "mix-burst-too-small",
        MIX,
        "- burst: {requests: 2, mix: {update: 1, read: 3}}",
        "scenario.load[1].burst",
        at="{requests",
    ),
    T(
        "mix-and-request",
        MIX,
        "- constant: {copies: 3, during: 300ms, request: read, mix: {update: 1}}",
        "scenario.load[1].constant",
        at="{copies",
    ),
    # --- toxics: attributes the proxy will accept, times bounded
    T(
        "toxic-bogus-attribute",
        ISOLATE_ATTRS,
        ISOLATE_ATTRS[:-1] + ", bogus: 1}",
        f"{IS}.attributes.bogus",
        at="attributes:",
    ),
    T(
        "toxic-median-negative",
        ISOLATE_ATTRS,
        ISOLATE_ATTRS.replace("median_ms: 2", "median_ms: -2"),
        f"{IS}.attributes.median_ms",
        at="attributes:",
    ),
    T(
        "toxic-median-inf",
        ISOLATE_ATTRS,
        ISOLATE_ATTRS.replace("median_ms: 2", "median_ms: .inf"),
        f"{IS}.attributes.median_ms",
        at="attributes:",
    ),
    T(
        "toxic-missing-sigma",
        ISOLATE_ATTRS,
        "attributes: {distribution: lognormal, median_ms: 2}",
        f"{IS}.attributes",
        at="attributes:",
    ),
    T(
        "toxic-unknown-distribution",
        ISOLATE_ATTRS,
        "attributes: {distribution: pareto, median_ms: 2}",
        f"{IS}.attributes.distribution",
        at="attributes:",
    ),
    T(
        "toxic-latency-past-a-day",
        ISOLATE_ATTRS,
        "attributes: {latency: 100000000000}",
        f"{IS}.attributes.latency",
        at="attributes:",
    ),
    T(
        "toxic-latency-word",
        ISOLATE_ATTRS,
        "attributes: {latency: slow}",
        f"{IS}.attributes.latency",
        at="attributes:",
    ),
    T("toxic-unknown-type", TOXIC, REDIS_LINK + "        type: lag\n", f"{IS}.type", at="type:"),
    T(
        "toxic-toxicity-two",
        TOXIC,
        TOXIC + "        toxicity: 2\n",
        f"{IS}.toxicity",
        at="toxicity:",
    ),
    T(
        "toxic-toxicity-nan",
        TOXIC,
        TOXIC + "        toxicity: .nan\n",
        f"{IS}.toxicity",
        at="toxicity:",
    ),
    T(
        "toxic-stream-sideways",
        TOXIC,
        TOXIC + "        stream: sideways\n",
        f"{IS}.stream",
        at="stream:",
    ),
    T(
        "toxic-unknown-link",
        "      - link: inventory->redis\n",
        "      - link: inventory->mongo\n",
        f"{IS}.link",
        at="link:",
    ),
    T(
        "toxic-bandwidth-negative",
        TOXIC + "        " + ISOLATE_ATTRS,
        REDIS_LINK + "        type: bandwidth\n        attributes: {rate: -5}",
        f"{IS}.attributes.rate",
        at="attributes:",
    ),
    T(
        "chaos-bogus-attribute",
        CHAOS_ATTRS,
        CHAOS_ATTRS[:-1] + ", bogus: 1}",
        f"{EX1}.attributes.bogus",
        at="attributes:",
    ),
    T(
        "chaos-toxicity-five",
        CHAOS_ATTRS,
        CHAOS_ATTRS[:-1] + ", toxicity: 5}",
        f"{EX1}.attributes.toxicity",
        at="attributes:",
    ),
    T(
        "chaos-median-nan",
        CHAOS_ATTRS,
        CHAOS_ATTRS.replace("median_ms: 10", "median_ms: .nan"),
        f"{EX1}.attributes.median_ms",
        at="attributes:",
    ),
    # --- chaos schedule and probes
    kill("chaos-interval-zero", "interval: 6s", "interval: 0s", "interval"),
    kill("chaos-interval-inf", "interval: 6s", "interval: .inf", "interval"),
    kill("chaos-start-negative", "start: 500ms", "start: -1s", "start"),
    kill("chaos-start-past-a-day", "start: 500ms", "start: 25h", "start"),
    kill("chaos-count-zero", "count: 2", "count: 0", "count"),
    kill("chaos-percentage-zero", "count: 2", "count: 2, percentage: 0", "percentage"),
    kill("chaos-grace-inf", "count: 2", "count: 2, grace: .inf", "grace"),
    kill("chaos-cores-zero", "count: 2", "count: 2, cores: 0", "cores"),
    kill("chaos-unknown-service", "service: inventory", "service: invntory", "service"),
    T("chaos-duration-inf", "duration: 15s", "duration: .inf", f"{EX1}.duration"),
    T(
        "chaos-phase-duration-zero",
        "  chaos:\n    duration: 20s",
        "  chaos:\n    duration: 0s",
        "phases.chaos.duration",
        at="duration: 0s",
    ),
    T("chaos-rate-inf", "    rate: 150", "    rate: .inf", "phases.chaos.rate"),
    T("chaos-rate-zero", "    rate: 150", "    rate: 0", "phases.chaos.rate"),
    probe("probe-interval-zero", "interval: 1s", "interval: 0s", "interval"),
    probe("probe-interval-nan", "interval: 1s", "interval: .nan", "interval"),
    probe("probe-availability-above-one", "availability: 0.8", "availability: 1.5", "availability"),
    probe("probe-tolerance-nan", "tolerance: 0.1", "tolerance: .nan", "tolerance"),
    probe("probe-latency-zero", "tolerance: 0.1", "tolerance: 0.1, latency_p99: 0s", "latency_p99"),
    T(
        "probe-unknown-invariant",
        "invariant: no-oversell,",
        "invariant: no-oversel,",
        "phases.chaos.probes[0].invariant",
    ),
    # --- other phases
    T("predict-agents-zero", "agents: 250", "agents: 0", "phases.predict.agents"),
    T("predict-cycles-huge", "cycles: 2000", "cycles: 1e12", "phases.predict.cycles"),
    T("fuzz-cases-zero", "cases: 100", "cases: 0", "phases.fuzz.cases"),
    T("fuzz-concurrency-zero", "concurrency: 4", "concurrency: 0", "phases.fuzz.concurrency"),
    T(
        "fuzz-string-bytes-huge",
        "concurrency: 4",
        "concurrency: 4\n    max_string_bytes: 1000000000000",
        "phases.fuzz.max_string_bytes",
        at="max_string_bytes:",
    ),
    T(
        "fuzz-unknown-request",
        FUZZ,
        "  fuzz:\n    request: chekout\n",
        "phases.fuzz.request",
        at="request: chekout",
    ),
    T(
        "stress-hotspot-zero",
        "    trials: 12\n",
        "    trials: 12\n    hotspot: 0\n",
        "phases.stress.hotspot",
        at="hotspot:",
    ),
    T(
        "contain-unknown-service",
        "    trials: 6\n",
        "    trials: 6\n    resources: {inventry: {cpu: 250m}}\n",
        "phases.contain.resources.inventry",
        at="resources:",
    ),
    T(
        "contain-cpu-1m",
        "    trials: 6\n",
        "    trials: 6\n    resources: {inventory: {cpu: 1m}}\n",
        "phases.contain.resources.inventory.cpu",
        at="resources:",
    ),
    T("isolate-unknown-stub", "stubs: [payments]", "stubs: [paymints]", "phases.isolate.stubs[0]"),
    T(
        "acknowledged-status-700",
        "status: [201]",
        "status: [700]",
        "invariants[2].acknowledged.status[0]",
    ),
    T(
        "expect-status-99",
        "      path: /events/concert/checkout\n",
        "      path: /events/concert/checkout\n      expect_status: [99]\n",
        "scenario.requests.checkout.expect_status[0]",
        at="expect_status:",
    ),
    T(
        "method-with-path",
        "      method: PUT\n",
        "      method: PUT /x\n",
        "scenario.requests.update.method",
        at="method: PUT /x",
    ),
    T(
        "path-with-space",
        "      path: /events/concert/checkout\n",
        "      path: /events/concert checkout\n",
        "scenario.requests.checkout.path",
        at="path: /events/concert checkout",
    ),
    T(
        "path-without-slash",
        "      path: /events/concert/checkout\n",
        "      path: events/concert/checkout\n",
        "scenario.requests.checkout.path",
        at="path: events",
    ),
    T(
        "header-name-colon",
        "      path: /events/concert/checkout\n",
        '      path: /events/concert/checkout\n      headers: {"X-A: b": c}\n',
        "scenario.requests.checkout.headers.X-A: b",
        at="headers:",
    ),
    T(
        "header-value-newline",
        "      path: /events/concert/checkout\n",
        '      path: /events/concert/checkout\n      headers: {X-A: "b\\r\\nX-Injected: 1"}\n',
        "scenario.requests.checkout.headers.X-A",
        at="headers:",
    ),
    T(
        "checkout-faker-typo",
        CHECKOUT,
        CHECKOUT.replace("user_name", "user_nme"),
        "scenario.requests.checkout.json.user",
    ),
    T(
        "history-value-nowhere",
        "value: request.price",
        "value: price",
        "scenario.requests.update.history.value",
    ),
    # --- YAML: duplicate keys, tags, merges, nesting, syntax
    C("duplicate-trials", TRIALS, TRIALS + "    trials: 5\n", f"{ST}.trials", at="trials: 5"),
    C("duplicate-name", "seed: 7\n", "seed: 7\nname: other\n", "name", at="name: other"),
    C(
        "duplicate-env-key",
        MODE,
        MODE + "\n      MODE: fixed",
        "services.counter.env.MODE",
        at="MODE: fixed",
    ),
    body("duplicate-flow-key", "1, by: 2"),
    C(
        "duplicate-service",
        "services:\n",
        'services:\n  counter: {url: "http://127.0.0.1:1"}\n',
        "services.counter",
        at="  counter:\n    command",
    ),
    C("tag-binary", "name: counter-lost-update", "name: !!binary aGVsbG8=", "name"),
    C("tag-timestamp", "name: counter-lost-update", "name: !!timestamp 2024-01-01", "name"),
    C("tag-set", "name: counter-lost-update", "name: !!set {a, b}", "name"),
    C("tag-omap", JSON, "      json: !!omap [{by: 1}]", "scenario.requests.incr.json"),
    C(
        "tag-python-object",
        "name: counter-lost-update",
        "name: !!python/object/apply:os.system [true]",
        "name",
    ),
    C("tag-python-name", "name: counter-lost-update", "name: !!python/name:os.system ''", "name"),
    C("tag-custom", MODE, "      MODE: !env HOME", "services.counter.env.MODE"),
    C("tag-float-on-word", TRIALS, "    trials: !!float three\n", f"{ST}.trials"),
    C(
        "tag-bool-on-word",
        "embedded: true",
        "embedded: !!bool maybe",
        "dependencies.postgres.embedded",
    ),
    C(
        "merge-key-scalar",
        "phases:\n  stress:\n",
        "phases:\n  stress:\n    <<: 5\n",
        f"{ST}.<<",
        at="<<: 5",
    ),
    C(
        "merge-key-list-of-scalars",
        "phases:\n  stress:\n",
        "phases:\n  stress:\n    <<: [1, 2]\n",
        f"{ST}.<<",
        at="<<: [1",
    ),
    C(
        "merge-key-self",
        "phases:\n  stress:\n",
        "phases:\n  stress: &s\n    <<: *s\n",
        ST,
        at="stress: &s",
    ),
    body("deep-nesting-flow", "[" * 100 + "]" * 100, "<document>"),
    body("deep-nesting-10000", "[" * 10000 + "]" * 10000, "<document>"),
    C(
        "deep-nesting-block",
        MODE,
        MODE
        + "\n"
        + "".join("      " + "  " * i + f"k{i}:\n" for i in range(70))
        + "      "
        + "  " * 70
        + "v: 1",
        "<document>",
        at="      " + "  " * 60 + "k60:",
    ),
    body("recursive-alias", "&loop [1, *loop]", "scenario.requests.incr.json.by"),
    body(
        "alias-bomb",
        "{a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], "
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d], f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e], "
        "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]}",
        "scenario.requests.incr.json.by.g[0]",
    ),
    C("complex-key", MODE, MODE + "\n      ? [a, b]\n      : c", "services.counter.env", at="? [a"),
    C("syntax-unclosed-bracket", JSON, "      json: {by: [1, 2}", "<document>"),
    C(
        "syntax-bad-indent",
        "    replicas: 2\n",
        "    replicas: 2\n   broken: 1\n",
        "<document>",
        at="broken",
    ),
    C("syntax-tab-indent", "    replicas: 2\n", "\treplicas: 2\n", "<document>", at="\treplicas"),
    C("syntax-stray-colon", MODE, "      MODE: a: b", "<document>"),
    C("two-documents", "phases:\n", "---\nphases:\n", "<document>", at="---"),
    C("not-a-mapping", BASES["counter"], "- just\n- a list\n", "<document>", line=None),
    # --- schema shape
    C("unknown-key-typo", TRIALS, "    trails: 3\n", f"{ST}.trails"),
    C(
        "services-as-list",
        "services:\n  counter:\n",
        "services:\n  - counter:\n",
        "services",
        at="- counter",
    ),
    C(
        "invariant-two-probes",
        "    expect: n == logged\n",
        "    redis: [GET, x]\n    expect: n == logged\n",
        "invariants[0]",
        at="  - name: no-lost",
    ),
    C(
        "dependency-two-ways",
        "    embedded: true\n",
        "    embedded: true\n    dsn: postgresql://127.0.0.1/x\n",
        "dependencies.postgres",
        at="    kind: postgres",
    ),
    C(
        "service-no-command",
        '    command: ["{{ python }}", "counter_service.py"]\n',
        "",
        "services.counter",
        at="    replicas: 2",
    ),
    C("api-version-v2", "apiVersion: heisen/v1", "apiVersion: heisen/v2", "apiVersion"),
    C(
        "missing-init-file",
        "init: ../counter/schema.sql",
        "init: ../counter/nope.sql",
        "dependencies.postgres.init",
    ),
    C("load-empty", "    - burst: {requests: 40}\n", "    []\n", "scenario.load", at="    []"),
    # --- accepted: hostile-looking but legal
    C("ok-unchanged-counter", "", "", exit=0, line=None),
    T("ok-unchanged-ticketing", "", "", exit=0, line=None),
    C("ok-merge-key", TRIALS, "    <<: {trials: 9, stop: all}\n" + TRIALS, exit=0, line=None),
    C(
        "ok-date-in-description",
        "seed: 7\n",
        "seed: 7\ndescription: 2024-01-01\n",
        exit=0,
        line=None,
    ),
    C("ok-str-tag", "name: counter-lost-update", "name: !!str 5", exit=0, line=None),
    C(
        "ok-cpu-memory-minimums",
        RES,
        RES + "\n    resources: {cpu: 10m, memory: 4Mi}",
        exit=0,
        line=None,
    ),
    C("ok-timeout-a-day", HEALTH, "health: {path: /health, timeout: 24h}", exit=0, line=None),
    C(
        "ok-timeout-a-millisecond",
        HEALTH,
        "health: {path: /health, timeout: 1ms}",
        exit=0,
        line=None,
    ),
    T(
        "ok-mix-one-percent",
        MIX,
        "- constant: {copies: 3, during: 300ms, mix: {update: 1, read: 99}}",
        exit=0,
        line=None,
    ),
    T("ok-chaos-start-zero", "start: 500ms", "start: 0s", exit=0, line=None),
    # --- what the expression, loopback and referenced-file checks catch
    T(
        "expect-unknown-name",
        "expect: sold <= capacity",
        "expect: sold <= capacty",
        "invariants[0].expect",
    ),
    T(
        "expect-cost-budget",
        "expect: sold <= capacity",
        'expect: "sum([1] * 1000000000) > 0"',
        "invariants[0].expect",
    ),
    T(
        "service-url-not-loopback",
        '    command: ["{{ python }}", "inventory_service.py"]',
        "    url: http://10.1.2.3:8080",
        "services.inventory.url",
    ),
    T(
        "service-url-lookalike-host",
        '    command: ["{{ python }}", "inventory_service.py"]',
        "    url: http://127.0.0.1.example.com:8080",
        "services.inventory.url",
    ),
    T(
        "dsn-host-parameter",
        f"    kind: postgres\n    embedded: true\n    init: {TICKETING}/schema.sql\n",
        "    kind: postgres\n    dsn: postgresql://u:p@127.0.0.1/x?host=192.168.1.5\n",
        "dependencies.postgres.dsn",
        at="dsn:",
    ),
    T(
        "architecture-broken",
        f"architecture: {TICKETING}/architecture.yaml",
        "architecture: files/architecture-broken.yaml",
        "phases.predict.architecture",
    ),
    T(
        "incidents-broken",
        f"incidents: {TICKETING}/incidents.yaml",
        "incidents: files/incidents-broken.yaml",
        "phases.predict.incidents",
    ),
    T(
        "openapi-broken",
        f"openapi: {TICKETING}/openapi.yaml",
        "openapi: files/openapi-broken.yaml",
        "phases.fuzz.openapi",
    ),
    T(
        "stub-mapping-broken",
        f"stub: {TICKETING}/stubs ",
        "stub: files/stubs-broken ",
        "dependencies.payments.stub",
    ),
    T(
        "observe-repeat-zero",
        f"    incidents: {TICKETING}/incidents.yaml\n",
        "    observe: {repeat: 0}\n",
        "phases.predict.observe.repeat",
        at="repeat: 0",
    ),
    T(
        "observe-unknown-request",
        f"    incidents: {TICKETING}/incidents.yaml\n",
        "    observe: {requests: [checkout, refund]}\n",
        "phases.predict.observe.requests[1]",
        at="refund",
    ),
    T(
        "observe-unknown-key",
        f"    incidents: {TICKETING}/incidents.yaml\n",
        "    observe: {repeats: 3}\n",
        "phases.predict.observe.repeats",
        at="repeats",
    ),
]


def render(case: Case) -> tuple[str, int | None]:
    base = BASES[case.base]
    if case.old:
        assert base.count(case.old) == 1, f"{case.slug}: {case.old!r} is not unique in {case.base}"
        start = base.index(case.old)
        text = base[:start] + case.new + base[start + len(case.old) :]
    else:
        start, text = 0, base
    if case.line is None:
        line = None
    elif case.line == "auto":
        at = case.at if case.at is not None else case.new
        found = text.index(at, max(0, start - 200) if case.at else start)
        line = text[:found].count("\n") + 1
    else:
        line = int(case.line)
    return text, line


def write_all() -> int:
    for old in HERE.glob("[0-9][0-9][0-9]-*.yaml"):
        old.unlink()
    for number, case in enumerate(CASES, start=1):
        text, line = render(case)
        expect = f"# expect: exit {case.exit}"
        if case.exit != 0:
            expect += f", path: {case.path}, line: {'-' if line is None else line + 2}"
        lines = [expect]
        lines.append(f"# pending: {case.pending}" if case.pending else f"# case: {case.slug}")
        (HERE / f"{number:03d}-{case.slug}.yaml").write_text("\n".join(lines) + "\n" + text)
    return len(CASES)


if __name__ == "__main__":
    sys.stdout.write(f"{write_all()} cases written to {HERE}\n")
