"""The WireMock mapping tree in stub_tree/, answered as WireMock's docs say it should be."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from test_stub_support import ThreadedStub

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with ThreadedStub() as stub, httpx.Client(base_url=stub.url, timeout=5) as client:
        yield client


def test_exact_url_status_message_and_multi_valued_headers(client: httpx.Client) -> None:
    response = client.get("/hello")
    assert (response.status_code, response.text, response.reason_phrase) == (
        200,
        "hello",
        "Fine Thanks",
    )
    assert response.headers.get_list("X-Multi") == ["a", "b"]
    assert response.headers["Matched-Stub-Id"]
    assert client.get("/hello?x=1").status_code == 404  # url compares path and query


def test_url_path_with_query_parameters_and_absent(client: httpx.Client) -> None:
    assert client.get("/search", params={"q": "race", "page": "2"}).text == "found"
    assert client.get("/search", params={"q": "race", "debug": "1"}).status_code == 404
    assert client.get("/search", params={"q": "other"}).status_code == 404


def test_any_method_and_url_pattern_on_path_and_query(client: httpx.Client) -> None:
    assert client.put("/any/thing?x=1").status_code == 202
    assert client.delete("/any/thing?x=1").status_code == 202
    assert client.get("/any/thing?x=2").status_code == 404


def test_url_path_pattern_and_json_body(client: httpx.Client) -> None:
    response = client.get("/users/123?verbose=1")
    assert response.json() == {"kind": "user"}
    assert client.get("/users/abc").status_code == 404


def test_url_path_template_with_path_parameters(client: httpx.Client) -> None:
    assert client.get("/accounts/42/orders/o-7").text == "order of 42"
    assert client.get("/accounts/41/orders/o-7").status_code == 404
    assert client.get("/accounts/42/orders/x-7").status_code == 404


def test_headers_cookies_and_json_body_patterns(client: httpx.Client) -> None:
    ok = client.post(
        "/pay",
        headers={"x-api-key": "secret", "Cookie": "session=s-99"},
        json={"amount": 10, "currency": "EUR", "extra": True},
    )
    assert (ok.status_code, ok.json()) == (201, {"paid": True})
    no_cookie = client.post(
        "/pay", headers={"x-api-key": "secret"}, json={"amount": 1, "currency": "EUR"}
    )
    assert no_cookie.status_code == 404
    no_amount = client.post(
        "/pay", headers={"x-api-key": "secret", "Cookie": "session=s-1"}, json={"currency": "EUR"}
    )
    assert no_amount.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("a race here", 200),
        ("a race with lock", 404),  # doesNotContain
        ("race 2", 404),  # matches ^[a-z ]+$
        ("race of mutex", 404),  # doesNotMatch
    ],
)
def test_string_body_operators(client: httpx.Client, body: str, status: int) -> None:
    assert client.post("/text", content=body).status_code == status


def test_equal_to_json_ignore_array_order(client: httpx.Client) -> None:
    assert client.post("/json-order", json={"ids": [3, 1, 2]}).status_code == 200
    assert client.post("/json-order", json={"ids": [3, 1]}).status_code == 404
    assert client.post("/json-order", json={"ids": [1, 2, 3], "more": 1}).status_code == 404


def test_json_path_filter_and_nested_matcher(client: httpx.Client) -> None:
    good = {"items": [{"sku": "A-1", "qty": 1}, {"sku": "B-2", "qty": 9}]}
    assert client.post("/bulk", json=good).status_code == 200
    small = {"items": [{"sku": "A-1", "qty": 1}, {"sku": "B-2", "qty": 5}]}
    assert client.post("/bulk", json=small).status_code == 404
    wrong_first = {"items": [{"sku": "Z-9", "qty": 7}]}
    assert client.post("/bulk", json=wrong_first).status_code == 404


def test_absent_header(client: httpx.Client) -> None:
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers={"Authorization": "Bearer x"}).status_code == 404


def test_base64_and_file_bodies(client: httpx.Client) -> None:
    assert client.get("/binary").content == b"\x00\x01\x02\xff"
    assert client.get("/file").json() == {"greeting": "from __files"}


def test_priority_lower_wins_and_ties_go_to_the_newest(client: httpx.Client) -> None:
    assert client.get("/prio").text == "high"
    assert client.get("/tie").text == "newer"


def test_single_mapping_file(client: httpx.Client) -> None:
    assert client.delete("/single").status_code == 204


def test_unmatched_names_the_closest_stub(client: httpx.Client) -> None:
    response = client.post(
        "/pay",
        headers={"x-api-key": "wrong", "Cookie": "session=s-1"},
        json={"amount": 1, "currency": "EUR"},
    )
    assert response.status_code == 404
    assert "Request was not matched" in response.text
    assert "Closest stub: pay" in response.text
    assert "header x-api-key" in response.text and "does not match" in response.text


def test_todo_scenario_from_the_docs(client: httpx.Client) -> None:
    client.post("/__admin/scenarios/reset")
    assert client.get("/todo/items").text == "Buy milk"
    assert client.post("/todo/items", content="Cancel newspaper subscription").status_code == 201
    assert client.get("/todo/items").text == "Buy milk, Cancel newspaper subscription"
    scenarios = client.get("/__admin/scenarios").json()["scenarios"]
    assert scenarios[0]["state"] == "Cancel newspaper item added"
    client.post("/__admin/scenarios/reset")
    assert client.get("/todo/items").text == "Buy milk"


def test_pipelined_requests_are_answered_in_order() -> None:
    import socket

    with ThreadedStub() as stub:
        with socket.create_connection((stub.server.host, stub.server.port), timeout=5) as sock:
            sock.sendall(
                b"GET /fixed HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            for _ in range(100):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    bodies = [part.split(b"\r\n\r\n", 1)[1][:5] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"fixed", b"hello", b"hello"]


def test_json_round_trip_of_loaded_mapping(client: httpx.Client) -> None:
    mapping = client.get("/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7").json()
    assert mapping["request"] == {"method": "DELETE", "urlPath": "/single"}
    assert json.loads(json.dumps(mapping))["name"] == "single mapping file"
