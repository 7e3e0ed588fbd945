"""``Idempotency-Key`` on the CRM API's POSTs, over real HTTP with real SQLite and the
controller's movable clock: the first answer (status and body) is replayed for the same key
and request; the same key with another request is a 422; a key still being answered is a
409 with Retry-After; keys belong to one API key; after 24 h a key is swept and free again."""
from __future__ import annotations

import json

import pytest

from controller import auth as keys
from controller.idempotency import KEEP_SECONDS, fingerprint
from controller.server import create_key

pytestmark = pytest.mark.controller(dispatch=False)

CALL = [{"kind": "call"}]


def headers(key: str, idem: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **({"Idempotency-Key": idem} if idem else {})}


async def post(http, c, key, path: str, body, idem: str | None = None):
    async with http.post(f"{c.url}{path}", json=body, headers=headers(key, idem)) as r:
        return r.status, await r.read(), r.headers


async def test_a_retried_create_gets_the_first_answer_and_makes_one_campaign(controller, http):
    c, key = controller
    body = {"id": "jan", "name": "January", "strategy": CALL}
    first = await post(http, c, key, "/v1/campaigns", body, "k-1")
    clock_was = c.clock()
    c.clock.advance(60)  # a minute later, the same request again: updated_at would differ if it ran twice
    again = await post(http, c, key, "/v1/campaigns", body, "k-1")
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert again[2]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[2]
    assert json.loads(again[1])["created_at"] <= clock_was
    assert [x["id"] for x in c.store.list_campaigns()] == ["jan"]
    # without a key, the same POST is a second request: 409 exists
    status, out, _ = await post(http, c, key, "/v1/campaigns", body)
    assert status == 409 and json.loads(out)["code"] == "exists"


async def test_the_same_key_for_another_request_is_a_422_and_runs_nothing(controller, http):
    c, key = controller
    assert (await post(http, c, key, "/v1/campaigns", {"id": "a", "strategy": CALL}, "k-2"))[0] == 201
    for path, body in (("/v1/campaigns", {"id": "b", "strategy": CALL}), ("/v1/optouts", {"number": "+48600100200"})):
        status, out, hdrs = await post(http, c, key, path, body, "k-2")
        problem = json.loads(out)
        assert status == 422 and hdrs["Content-Type"].startswith("application/problem+json"), problem
        assert problem["code"] == "idempotency_key_reused" and problem["errors"][0]["field"] == "Idempotency-Key"
        assert "new key" in problem["detail"]
    assert [x["id"] for x in c.store.list_campaigns()] == ["a"] and c.store.list_optouts("", 10) == []


async def test_a_refusal_is_kept_too_and_a_state_change_replays(controller, http):
    c, key = controller
    bad = {"id": "x y", "strategy": CALL}
    s1, b1, _ = await post(http, c, key, "/v1/campaigns", bad, "k-3")
    s2, b2, h2 = await post(http, c, key, "/v1/campaigns", bad, "k-3")
    assert s1 == s2 == 400 and b1 == b2 and h2["Idempotent-Replayed"] == "true"
    assert h2["Content-Type"].startswith("application/problem+json")
    assert (await post(http, c, key, "/v1/campaigns", {"id": "p", "strategy": CALL, "start": True}))[0] == 201
    s1, b1, _ = await post(http, c, key, "/v1/campaigns/p/pause", None, "k-4")
    await post(http, c, key, "/v1/campaigns/p/resume", None)  # the campaign moves on meanwhile
    s2, b2, h2 = await post(http, c, key, "/v1/campaigns/p/pause", None, "k-4")
    assert s1 == s2 == 200 and json.loads(b2)["state"] == "paused" and h2["Idempotent-Replayed"] == "true"
    assert c.store.get_campaign("p")["state"] == "running"  # the replay did not pause it again


async def test_keys_belong_to_one_api_key(controller, http):
    c, key = controller
    other = create_key(c.store, "other crm", c.clock())["key"]
    s1, b1, _ = await post(http, c, key, "/v1/optouts", {"number": "+48600100200"}, "shared")
    s2, b2, h2 = await post(http, c, other, "/v1/optouts", {"number": "+48600100200"}, "shared")
    assert (s1, json.loads(b1)["created"]) == (201, True)
    assert (s2, json.loads(b2)["created"]) == (200, False) and "Idempotent-Replayed" not in h2


async def test_a_key_still_being_answered_is_a_409_with_retry_after(controller, http):
    c, key = controller
    body = json.dumps({"number": "+48600100200"}).encode()
    scope = c.store.api_key_for_hash(keys.digest(key))
    # the first request with this key has claimed it and not answered yet
    assert c.store.claim_idempotency_key(scope, "busy", fingerprint("POST", "/v1/optouts", "application/json", body),
                                         c.clock(), c.clock() - KEEP_SECONDS) is None
    async with http.post(f"{c.url}/v1/optouts", data=body,
                         headers={**headers(key, "busy"), "Content-Type": "application/json"}) as r:
        problem = await r.json(content_type=None)
        assert r.status == 409 and r.headers["Retry-After"] == "1", problem
    assert problem["code"] == "idempotency_key_in_use" and c.store.list_optouts("", 10) == []


@pytest.mark.parametrize("bad", ["", "x" * 256, "has space", "zażółć"])
async def test_a_key_that_is_not_visible_ascii_of_at_most_255_is_a_400(controller, http, bad):
    c, key = controller
    async with http.post(f"{c.url}/v1/optouts", json={"number": "+48600100200"},
                         headers={"Authorization": f"Bearer {key}", "Idempotency-Key": bad}) as r:
        problem = await r.json(content_type=None)
    assert r.status == 400 and problem["code"] == "bad_idempotency_key", problem
    assert c.store.list_optouts("", 10) == []


async def test_keys_are_swept_after_24_hours_and_the_key_is_free_again(controller, http):
    c, key = controller
    assert (await post(http, c, key, "/v1/campaigns", {"id": "a", "strategy": CALL}, "day-old"))[0] == 201
    assert (await post(http, c, key, "/v1/campaigns", {"id": "b", "strategy": CALL}, "fresh"))[0] == 201
    assert c.store.idempotency_key_count() == 2
    c.clock.advance(KEEP_SECONDS - 10)
    assert (await post(http, c, key, "/v1/campaigns", {"id": "c", "strategy": CALL}, "day-old"))[0] == 422
    c.clock.advance(20)  # now past 24 h: the next claim sweeps both
    status, out, hdrs = await post(http, c, key, "/v1/campaigns", {"id": "c", "strategy": CALL}, "day-old")
    assert status == 201 and json.loads(out)["id"] == "c" and "Idempotent-Replayed" not in hdrs
    assert c.store.idempotency_key_count() == 1
    assert [x["id"] for x in c.store.list_campaigns()] == ["a", "b", "c"]
