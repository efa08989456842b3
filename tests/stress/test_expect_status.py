"""A scenario request's `expect_status:` says which answers count as ok in `load.<request>`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from support import heisen, manifest_of, serve_app, write

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: sold-out
services:
  shop: {{url: "{url}"}}
scenario:
  setup: [{{http: {{method: POST, path: /reset}}}}]
  requests:
    buy: {{method: POST, path: /buy{expect}}}
  load: [{{burst: {{requests: 6, request: buy}}}}]
invariants:
  - name: no-failed-buy
    http: {{method: GET, path: /sold}}
    expect: load.buy.failed == 0 and load.buy.ok == 6 and load.buy.status["409"] == 4
phases:
  stress: {{trials: 2}}
"""


def shop() -> web.Application:
    """Two tickets: the first two buys get 200, the rest 409 (sold out)."""
    state = {"sold": 0}

    async def reset(request: web.Request) -> web.Response:
        state["sold"] = 0
        return web.json_response({})

    async def buy(request: web.Request) -> web.Response:
        if state["sold"] >= 2:
            return web.json_response({"error": "sold out"}, status=409)
        state["sold"] += 1
        return web.json_response({"sold": state["sold"]})

    async def sold(request: web.Request) -> web.Response:
        return web.json_response(state)

    app = web.Application()
    app.router.add_post("/reset", reset)
    app.router.add_post("/buy", buy)
    app.router.add_get("/sold", sold)
    return app


def run(tmp_path: Path, expect: str) -> dict[str, Any]:
    with serve_app(shop) as url:
        path = write(tmp_path, PIPELINE.format(url=url, expect=expect))
        result = heisen("stress", str(path), "--run-dir", str(tmp_path / "run"))
    return {"code": result.returncode, "manifest": manifest_of(tmp_path / "run")}


@pytest.mark.slow
def test_expected_statuses_count_as_ok_and_the_rest_as_failed(tmp_path: Path) -> None:
    expected = run(tmp_path / "expected", ", expect_status: [200, 409]")
    assert expected["code"] == 0
    outcomes = expected["manifest"]["phases"]["stress"]["outputs"]["outcomes"]
    assert (outcomes["ok"], outcomes["failed"]) == (12, 0)
    logged = (tmp_path / "expected" / "run" / "stress-load.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["outcome"] for line in logged) == ["ok"] * 12

    plain = run(tmp_path / "plain", "")
    assert plain["code"] == 1  # without it, the four 409s of each trial are failures
    outcomes = plain["manifest"]["phases"]["stress"]["outputs"]["outcomes"]
    assert (outcomes["ok"], outcomes["failed"]) == (4, 8)
