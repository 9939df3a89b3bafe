"""Least privilege: every route the app registers answers exactly the roles README gives it.

The routes are found by walking the app (the `surface` fixture), so a new route must join the
matrix below or this test fails naming it. Each route is called with a token of every role,
the workers' own credential, an unknown token and none: a refusal is 401 (no valid token) or
403 naming the role; an allowed caller gets anything but those (a 400 for the empty body, a
404 for the made-up key: it passed the check). Then a fleet whose workers cannot
authenticate each other: the worker that joins refuses to start, in one line.
"""

from __future__ import annotations

import re

import pytest

from app.main import START_REFUSED
from tests.harness import MANAGER, SERVICE, Worker, http_request, wait_until

pytestmark = pytest.mark.integration

PUBLIC = "public"  # no token needed
EVERYONE_IN_CHAT = {"client", "operator", "lawyer", "admin"}
QUEUE_READERS = {"operator", "admin", "manager"}

# (method, route) -> who passes: README's tables ("role" columns); "worker" is the workers' own
# credential (INTERNAL_TOKEN), on the internal routes and on the reads ask_owner forwards to a key's owner
MATRIX: dict[tuple[str, str], object] = {
    ("GET", "/"): PUBLIC, ("GET", "/health"): PUBLIC, ("GET", "/ready"): PUBLIC, ("GET", "/metrics"): PUBLIC,
    ("GET", "/static/{name}"): PUBLIC, ("GET", "/chat/client"): PUBLIC, ("GET", "/chat/operator"): PUBLIC,
    # call center
    ("GET", "/queues/status"): {"manager"},
    ("GET", "/queues/{queue}/status"): {"manager", "worker"},
    ("GET", "/queues/{queue}/metrics"): {"manager", "worker"},
    ("GET", "/operators"): {"manager"},
    ("GET", "/operators/{operator_id}"): {"manager", "operator", "worker"},
    ("GET", "/internal/cc/queues"): {"worker"},
    ("GET", "/internal/cc/operators"): {"worker"},
    # operator status
    ("POST", "/operators/{operator_id}/status"): {"manager", "operator"},
    ("GET", "/ws/operators"): {"manager", "operator"},
    # drivers
    ("GET", "/driver/v1/deptrans-status/v1/id"): {"driver"},
    ("POST", "/driver/v1/deptrans-status/v1/id"): {"driver"},
    ("GET", "/internal/v1/status/updates"): {"service"},
    ("GET", "/internal/v1/id/updates"): {"service"},
    ("GET", "/internal/deptrans/v1/driver"): {"worker"},
    # chat
    ("GET", "/api/v1/chat/ws/chat"): EVERYONE_IN_CHAT,
    ("POST", "/api/v1/chat/chats"): {"client", "admin"},
    ("GET", "/api/v1/chat/chats"): EVERYONE_IN_CHAT,
    ("GET", "/api/v1/chat/chats/{chat_id}/messages"): EVERYONE_IN_CHAT,
    ("GET", "/api/v1/chat/chats/queue"): QUEUE_READERS,
    ("GET", "/api/v1/chat/chats/operators"): QUEUE_READERS,
    ("GET", "/api/v1/chat/chats/stats"): QUEUE_READERS,
    ("GET", "/api/v1/chat/admin/queue"): {"admin"},
    ("GET", "/api/v1/chat/admin/operators"): {"admin"},
    ("GET", "/api/v1/chat/admin/stats"): {"admin"},
    ("POST", "/api/v1/chat/admin/transfer-chat"): {"admin"},
    ("POST", "/api/v1/chat/admin/assign-lawyer"): {"admin"},
    ("POST", "/api/v1/chat/admin/update-operator-status"): {"admin"},
    ("POST", "/api/v1/chat/admin/close-chat"): {"admin"},
    ("POST", "/api/v1/chat/admin/update-queue-priority"): {"admin"},
    ("GET", "/api/v1/chat/internal/desk"): {"worker"},
    ("GET", "/api/v1/chat/internal/chats/{chat_id}"): {"worker"},
    # IVR
    ("POST", "/tel/inbound_number"): {"service"},
    ("POST", "/routetoivr"): {"service"},
    ("POST", "/routetooperator"): {"service"},
    ("GET", "/routing"): {"service", "worker"},
    ("GET", "/make_call"): {"service", "worker"},
    # the fleet
    ("GET", "/internal/peer"): {"worker"},
}
ROLE_TOKENS = {"manager": MANAGER, "service": SERVICE, "operator": "test-operator-token", "driver": "test-driver-token",
               "client": "test-client-1", "lawyer": "test-lawyer-1", "admin": "test-admin-token"}
KEYS = {"queue": "support", "operator_id": "SIP%2F4242", "chat_id": "no-such-chat", "name": "index.html"}


def refused(status: int, body: object) -> bool:
    """A refusal of the caller (not of the request): 401, or 403 naming the caller's role."""
    if status == 401:
        return True
    message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
    return status == 403 and message.startswith("role ")


def test_every_route_is_in_the_matrix(surface):
    found = {tuple(r) for r in surface["routes"]}
    assert found - set(MATRIX) == set(), "new routes: give each its roles in MATRIX (and in README)"
    assert set(MATRIX) - found == set(), "routes the app no longer has: take them out of MATRIX"


def test_each_route_answers_exactly_its_roles(surface, worker, deployment):
    callers = {**ROLE_TOKENS, "worker": deployment.worker_token, "unknown": "not-a-token", "none": None}
    wrong = []
    for method, route in sorted(tuple(r) for r in surface["routes"]):
        allowed = MATRIX[(method, route)]
        path = re.sub(r"\{(\w+)\}", lambda m: KEYS[m.group(1)], route)
        for who, token in callers.items():
            status, body = http_request(method, worker.url + path, {} if method == "POST" else None, token)
            passes = allowed == PUBLIC or who in allowed  # type: ignore[operator]
            if passes == refused(status, body) or status >= 500:
                wrong.append(f"{method} {route} as {who}: {status} {str(body)[:120]}")
    assert wrong == [], "\n".join(wrong)


def test_a_worker_another_refuses_does_not_start_and_says_why(deployment, worker):
    """A second worker given another INTERNAL_TOKEN: its forwarded reads and fan-out would be
    refused (502s, sockets closed), so it stops at the start with one line naming the worker
    that refused it; the first keeps serving."""
    stranger = Worker(deployment, 9, INTERNAL_TOKEN="some-other-fleets-secret").start()
    try:
        wait_until(lambda: stranger.process.poll() is not None, timeout=120, what="the stranger to stop")
        assert stranger.process.returncode == START_REFUSED
        text = stranger.log_path.read_text()
        lines = [line for line in text.splitlines() if "workers cannot authenticate each other" in line]
        assert len(lines) == 1, text[-3000:]
        assert worker.url in lines[0] and "INTERNAL_TOKEN" in lines[0]
    finally:
        stranger.stop()
    wait_until(lambda: http_request("GET", worker.url + "/queues/status", token=MANAGER)[0] == 200, timeout=60,
               what="the first worker to answer for the fleet again")
