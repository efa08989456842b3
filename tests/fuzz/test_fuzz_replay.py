from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from fuzz_servers import serve

from heisen.fuzz._replay import curl_command, parse_fail_on, render_path, replay_command

CHECKOUT = "/events/{event_id}/checkout"


def ticketing(buggy: bool, seen: list[bytes]) -> web.Application:
    """The checkout shape: the buggy one crashes past int32, the fixed one answers 400."""

    async def checkout(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append(raw)
        body: Any = json.loads(raw)
        qty = body.get("qty") if isinstance(body, dict) else None
        if type(qty) is not int or not 1 <= qty <= 10:
            if buggy and type(qty) is int and qty > 2**31 - 1:
                return web.Response(status=500, text="integer out of range")
            if buggy and type(qty) is int:
                return web.json_response(
                    {"id": "o1", "event_id": "e1", "user": body.get("user"), "qty": qty}, status=201
                )
            return web.json_response({"error": "qty must be an integer from 1 to 10"}, status=400)
        return web.json_response(
            {
                "id": "o1",
                "event_id": request.match_info["event_id"],
                "user": body["user"],
                "qty": qty,
            },
            status=201,
        )

    app = web.Application()
    app.router.add_post(CHECKOUT, checkout)
    return app


def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=60, check=False
    )


def test_replay_exits_1_while_failing_and_0_once_fixed(tmp_path: Path) -> None:
    payload = {"user": "bob", "qty": 2**31}
    seen: list[bytes] = []
    with serve(lambda: ticketing(True, seen)) as url:
        command = replay_command(
            url,
            "post",
            render_path(CHECKOUT, {"event_id": "e 1"}),
            payload,
            {"X-Trace": "t1"},
            "5xx",
        )
        assert "--fail-on 5xx" in command and "/events/e%201/checkout" in command
        failing = run(command)
    assert failing.returncode == 1, failing.stderr
    assert "still failing: 500" in failing.stderr
    assert seen == [b'{"user":"bob","qty":2147483648}']
    with serve(lambda: ticketing(False, seen)) as url:
        fixed = run(replay_command(url, "POST", "/events/e1/checkout", payload, None, "5xx"))
    assert fixed.returncode == 0, fixed.stderr
    assert "passes: 400" in fixed.stderr


def test_large_bodies_go_through_a_file_and_nonconformance_counts(
    tmp_path: Path, ticketing_openapi: Path
) -> None:
    seen: list[bytes] = []
    big = {"user": "A" * 100_000, "qty": 0}
    body_file = tmp_path / "case.json"
    with serve(lambda: ticketing(True, seen)) as url:
        command = replay_command(
            url,
            "POST",
            "/events/e1/checkout",
            big,
            None,
            "5xx,nonconforming",
            body_file=body_file,
            openapi=ticketing_openapi,
            operation="POST /events/{event_id}/checkout",
        )
        result = run(command)
    assert result.returncode == 1, result.stderr
    assert "body.qty: 0 is below the minimum" in result.stderr
    assert seen == [body_file.read_bytes()]
    assert "--body-file" in command


def test_unreachable_service_exits_3_and_bad_flags_exit_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(replay_command(f"http://127.0.0.1:{port}", "POST", "/x", {"qty": 1}))
    assert result.returncode == 3 and "unreachable" in result.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "heisen.fuzz._replay",
            "--url",
            "http://127.0.0.1:1/",
            "--fail-on",
            "6xx",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--fail-on" in bad.stderr


def test_fail_on_grammar_and_curl_form(tmp_path: Path) -> None:
    spec = parse_fail_on("5xx, 413,400-402,timeout")
    assert spec.matches_status(503) and spec.matches_status(413) and spec.matches_status(401)
    assert not spec.matches_status(404) and spec.timeout and not spec.reset
    curl = curl_command(
        "http://127.0.0.1:8080/",
        "post",
        "/events/e1/checkout",
        {"qty": float("nan")},
        query={"dry": True},
    )
    assert shlex.split(curl) == [
        "curl",
        "-sS",
        "-i",
        "-X",
        "POST",
        "http://127.0.0.1:8080/events/e1/checkout?dry=true",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        '{"qty":NaN}',
    ]
    filed = curl_command("http://h", "POST", "/p", {"a": 1}, body_file=tmp_path / "b.json")
    assert filed.endswith(f"--data-binary @{tmp_path / 'b.json'}")
