"""A response longer than a request record keeps is not judged on its cut-off body.

The records of the stress client keep the first 64 KiB of a body: a service that echoes a
long field answers JSON that the record holds only the start of. Judging that start called a
correct service "nonconforming: content type text/plain"; its status is still judged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from fuzz_servers import serve

from heisen.fuzz._openapi import find_operation, load_openapi
from heisen.fuzz._send import RECORD_BODY_CAP, Outcome, classify
from heisen.fuzz.adhoc import run_adhoc_fuzz
from heisen.stress import RequestRecord
from heisen.stress._records import BODY_CAP

SPEC = """\
openapi: 3.0.3
info: {title: echo, version: "1"}
paths:
  /notes:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [text]
              properties: {text: {type: string}}
      responses:
        "201":
          description: The note, echoed.
          content:
            application/json:
              schema:
                type: object
                required: [text]
                properties: {text: {type: string}}
        "400":
          description: Refused.
          content:
            application/json:
              schema: {type: object, properties: {error: {type: string}}}
"""


def echo_app(seen: list[int]) -> web.Application:
    """A correct service: every string note is stored and echoed whole."""

    async def create(request: web.Request) -> web.Response:
        try:
            body: Any = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return web.json_response({"error": "text is a string"}, status=400)
        answer = json.dumps({"text": body["text"]})
        seen.append(len(answer.encode()))
        return web.Response(text=answer, status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/notes", create)
    return app


def test_the_cap_is_the_one_the_records_keep() -> None:
    assert RECORD_BODY_CAP == BODY_CAP


def test_a_correct_service_echoing_a_long_field_is_not_flagged(tmp_path: Path) -> None:
    spec = tmp_path / "openapi.yaml"
    spec.write_text(SPEC)
    seen: list[int] = []
    with serve(lambda: echo_app(seen)) as url:
        result = run_adhoc_fuzz(
            spec, url, operation="POST /notes", cases=30, seed=2, run_dir=tmp_path / "runs" / "a"
        )
    assert max(seen) > RECORD_BODY_CAP  # a body was cut in its record
    (report,) = result.operations
    assert report.failures == [], [f.detail for f in report.failures]


def record(status: int, body: bytes) -> RequestRecord:
    return RequestRecord(0, 0, "POST", "/notes", None, 1, 2, status, None, body, b"{}")


def test_a_cut_body_is_not_judged_but_its_status_is(tmp_path: Path) -> None:
    spec = tmp_path / "openapi.yaml"
    spec.write_text(SPEC)
    operation = find_operation(load_openapi(spec), "POST /notes")
    cut = b'{"text": "' + b"a" * RECORD_BODY_CAP
    cut = cut[:RECORD_BODY_CAP]
    passed = classify([record(201, cut)], operation)
    assert passed.outcome is None
    assert passed.detail == f"passed; body not checked: truncated at {RECORD_BODY_CAP} bytes"
    undocumented = classify([record(418, cut)], operation)
    assert undocumented.outcome is Outcome.NONCONFORMING
    assert "status 418 is not documented" in undocumented.detail
    # a body one byte shorter is whole: it is judged, and it is not JSON
    whole = classify([record(201, cut[:-1])], operation)
    assert whole.outcome is Outcome.NONCONFORMING and "content type" in whole.detail
