"""Who may call what: every role is only what it is (`service` passes no other role's check),
the workers' own credential is no client's, tokens are compared in constant time, and each
token that names no user spends a rate bucket of its own (web/common.py `identify`, app/settings.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

import web.common as common
from app.settings import ROLES, WORKER, Settings
from web.errors import ApiError

DEV = Settings()  # the development tokens web.common reads in these tests (no AUTH_TOKENS set)


def request(token: str | None = None, scheme: str = "Bearer") -> SimpleNamespace:
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    return SimpleNamespace(headers=headers)


def refusal(token: str | None, roles: tuple[str, ...], scheme: str = "Bearer") -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        common.identify(request(token, scheme), roles)  # type: ignore[arg-type]
    return caught.value.status, caught.value.message


def test_the_service_role_passes_only_the_routes_that_name_it() -> None:
    assert common.identify(request("dev-service-token"), ("service",)) == ("service", "service")  # type: ignore[arg-type]
    for roles in [("manager",), ("admin",), ("driver",), ("client", "operator", "lawyer", "admin"), (WORKER,)]:
        status, message = refusal("dev-service-token", roles)
        assert status == 403 and message.startswith("role 'service' may not do this"), roles


def test_each_role_passes_its_own_check_and_no_other() -> None:
    for token, (role, _) in DEV.identities.items():
        assert common.identify(request(token), (role,))[0] == role  # type: ignore[arg-type]
        for other in ROLES + (WORKER,):
            if other != role:
                assert refusal(token, (other,))[0] == 403, (role, other)


def test_the_workers_credential_is_its_own_identity_and_no_client_role() -> None:
    who = common.identify(request(DEV.worker_token), (WORKER,))  # type: ignore[arg-type]
    assert who == (WORKER, WORKER)
    for role in ROLES:
        assert refusal(DEV.worker_token, (role,))[0] == 403
    status, message = refusal("dev-manager-token", (WORKER,))
    assert status == 403 and "the workers themselves" in message


def test_no_token_a_wrong_scheme_an_unknown_token_or_part_of_one_is_401() -> None:
    for token, scheme in [(None, "Bearer"), ("", "Bearer"), ("dev-manager-token", "Basic"), ("nope", "Bearer"),
                          ("dev-manager-toke", "Bearer"), ("dev-manager-token-", "Bearer"), (DEV.worker_token[:-1], "Bearer")]:
        assert refusal(token, ("manager", WORKER), scheme)[0] == 401, (token, scheme)


def test_a_token_is_compared_with_every_known_one_not_looked_up() -> None:
    """Constant time: the presented token's digest is compared (hmac.compare_digest) with the
    digest of every token, the workers' own too, whichever matches; no early exit."""
    compared = []
    original = common.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return original(a, b)

    common.hmac.compare_digest = counting  # type: ignore[assignment]
    try:
        common.identify(request("dev-manager-token"), ("manager",))  # type: ignore[arg-type]
        everyone = len(compared)
        compared.clear()
        refusal("no-such-token", ("manager",))
    finally:
        common.hmac.compare_digest = original  # type: ignore[assignment]
    assert everyone == len(compared) == len(DEV.identities) + 1


def test_a_token_naming_no_user_spends_its_own_rate_bucket() -> None:
    named = common.identify(request("dev-client-token"), ("client",))  # type: ignore[arg-type]
    assert named.bucket == "client:client-1"
    settings = Settings(auth_tokens="a-token=manager,b-token=manager,c-token=client:c1,d-token=client:c1")
    identities = {t: common.Who.of(r, u, t.encode()) for t, (r, u) in settings.named_identities.items()}
    assert identities["a-token"] == identities["b-token"] == ("manager", "manager")
    assert identities["a-token"].bucket != identities["b-token"].bucket  # two users' worth of requests
    assert identities["c-token"].bucket == identities["d-token"].bucket == "client:c1"  # one user, two devices


# --- the workers' credential --------------------------------------------------------------------


def test_the_derived_credential_is_the_same_for_one_fleet_and_differs_for_another() -> None:
    one = Settings(auth_tokens="m=manager,s=service", app_id="switchboard")
    assert one.worker_token == Settings(auth_tokens="s=service, m=manager", app_id="switchboard").worker_token
    assert one.worker_token != Settings(auth_tokens="m=manager,s=service", app_id="other").worker_token
    assert one.worker_token != Settings(auth_tokens="m=manager,s2=service", app_id="switchboard").worker_token
    assert one.worker_token not in one.identities and len(one.worker_token) == 64


def test_an_internal_token_set_is_the_credential_and_must_be_a_secret_of_its_own() -> None:
    assert Settings(internal_token=" x" * 10).worker_token == "x x x x x x x x x x"
    for kwargs, problem in [({"internal_token": "short"}, "at least 16"),
                            ({"internal_token": "dev-manager-token"}, "must not be one of AUTH_TOKENS"),
                            ({"auth_tokens": "", "internal_token": ""}, "set INTERNAL_TOKEN when AUTH_TOKENS is empty")]:
        with pytest.raises(ValidationError, match=problem):
            Settings(**kwargs)
    assert Settings(auth_tokens="", internal_token="0123456789abcdef").worker_token == "0123456789abcdef"
