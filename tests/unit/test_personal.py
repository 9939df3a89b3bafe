"""app/personal.py against the stand-in of dev/personal.py (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from app import metrics
from app.personal import PersonalClient, PersonalNotFound, PersonalUnavailable
from dev.personal import license_for, make_app
from tests.harness import free_port


async def _serving(port: int) -> web.AppRunner:
    runner = web.AppRunner(make_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _calls(outcome: str) -> float:
    return metrics.external_calls.labels("personal", outcome)._value.get()


def test_a_licence_is_looked_up_once_and_then_kept():
    async def run():
        port = free_port()
        runner = await _serving(port)
        client = PersonalClient(f"http://127.0.0.1:{port}")
        before = _calls("ok")
        try:
            assert await client.license_number("pd-1") == license_for("pd-1")
            assert await client.license_number("pd-1") == license_for("pd-1")
            assert _calls("ok") == before + 1
        finally:
            await client.close()
            await runner.cleanup()
    asyncio.run(run())


def test_an_unknown_id_is_not_found_and_a_missing_service_unavailable():
    async def run():
        port = free_port()
        runner = await _serving(port)
        client = PersonalClient(f"http://127.0.0.1:{port}", timeout_s=1.0)
        try:
            with pytest.raises(PersonalNotFound):
                await client.license_number("unknown-7")
        finally:
            await runner.cleanup()
        with pytest.raises(PersonalUnavailable) as raised:
            await client.license_number("pd-2")
        assert "pd-2" not in str(raised.value)
        await client.close()
    asyncio.run(run())


def test_the_cache_keeps_the_most_recently_used():
    async def run():
        port = free_port()
        runner = await _serving(port)
        client = PersonalClient(f"http://127.0.0.1:{port}", cache_size=2)
        try:
            for pd in ("a", "b", "a", "c"):
                await client.license_number(pd)
            assert list(client.cache) == ["a", "c"]
        finally:
            await client.close()
            await runner.cleanup()
    asyncio.run(run())


def test_the_stand_in_gives_ten_digit_licences_starting_77():
    licence = license_for("pd-x")
    assert len(licence) == 10 and licence.startswith("77") and licence.isdigit()
    assert licence == license_for("pd-x") != license_for("pd-y")
