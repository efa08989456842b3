"""Scenario match-and-transition is atomic: concurrent requests never see a torn state.

WireMock's own scenarios race here (wiremock#456; PR #3506 measured ~0.45%
wrong 404s at ~1,000 req/s). These tests send 1,000 concurrent requests over
real connections and allow zero wrong answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from test_stub_support import ThreadedStub

pytestmark = pytest.mark.timeout(120)
STEPS = 1000


def _chain_tree(tmp_path: Path) -> Path:
    """Scenario 'chain': state s{i} answers i and moves to s{i+1}; then a contested one-winner scenario."""
    mappings = []
    for i in range(STEPS):
        mappings.append(
            {
                "scenarioName": "chain",
                "requiredScenarioState": "Started" if i == 0 else f"s{i}",
                "newScenarioState": f"s{i + 1}",
                "request": {"method": "POST", "url": "/next"},
                # A delay keeps many replies pending while later requests are matched.
                "response": {
                    "status": 200,
                    "body": str(i),
                    "delayDistribution": {"type": "uniform", "lower": 0, "upper": 20},
                },
            }
        )
    mappings.append(
        {
            "scenarioName": "ticket",
            "requiredScenarioState": "Started",
            "newScenarioState": "sold",
            "request": {"method": "POST", "url": "/buy"},
            "response": {"body": "winner", "fixedDelayMilliseconds": 5},
        }
    )
    mappings.append(
        {
            "scenarioName": "ticket",
            "requiredScenarioState": "sold",
            "request": {"method": "POST", "url": "/buy"},
            "response": {"status": 409, "body": "sold out"},
        }
    )
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "chain.json").write_text(json.dumps({"mappings": mappings}))
    return tmp_path


async def _burst(url: str, count: int, connections: int) -> list[tuple[int, str]]:
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> tuple[int, str]:
            async with session.post(url) as response:
                return response.status, await response.text()

        return await asyncio.gather(*(one() for _ in range(count)))


def test_a_chain_of_1000_states_under_1000_concurrent_requests(tmp_path: Path) -> None:
    with ThreadedStub(_chain_tree(tmp_path), seed=7) as stub:
        for _round in range(2):
            answers = asyncio.run(_burst(stub.url + "/next", STEPS, connections=500))
            statuses = Counter(status for status, _ in answers)
            assert statuses == {200: STEPS}, f"wrong answers: {statuses}"
            assert sorted(int(body) for _, body in answers) == list(range(STEPS))
            state = {s["name"]: s["state"] for s in stub.call(_scenarios(stub))}
            assert state["chain"] == f"s{STEPS}"
            stub.call(_reset(stub))


def test_exactly_one_winner_for_a_contested_transition(tmp_path: Path) -> None:
    with ThreadedStub(_chain_tree(tmp_path)) as stub:
        for _round in range(3):
            answers = asyncio.run(_burst(stub.url + "/buy", 300, connections=300))
            assert Counter(answers) == {(200, "winner"): 1, (409, "sold out"): 299}
            stub.call(_reset(stub))


async def _scenarios(stub: ThreadedStub) -> list[dict[str, str]]:
    return stub.server.core.scenarios.to_json()


async def _reset(stub: ThreadedStub) -> None:
    stub.server.core.scenarios.reset()
