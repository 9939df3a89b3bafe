"""Settings checked before a start: one line per problem, naming the variable, never its secret."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace

import pytest

from app.checkconfig import main as check_config
from app.checkconfig import masked
from app.config import PLACEHOLDER, check_settings, env_names, settings_classes
from app.settings import Settings
from tests.harness import ROOT


def test_every_domains_settings_are_found_without_naming_a_domain():
    names = {cls.__name__ for cls in settings_classes()}
    assert names == {"Settings", "CallCenterSettings", "OperatorStatusSettings", "DeptransSettings", "ChatSettings",
                     "IvrSettings"}
    assert {"KAFKA_BOOTSTRAP", "WINDOW_S", "AMI_URL", "KRT_URL", "KRT_CLIENT_SECRET", "CHAT_MAX_TEXT",
            "IVR_MARGIN_S", "MIN_INSYNC_REPLICAS"} <= set(env_names())


@pytest.mark.parametrize("environ, expected", [
    ({"KRT_URL": "http://127.0.0.1:8088"}, "KRT_URL: bad KRT URL 'http://127.0.0.1:8088' (expected http(s)://client_id:"
                                           "secret@host[:port]): no client id, no client secret"),
    ({"KRT_URL": "ftp://a:b@krt"}, "KRT_URL: bad KRT URL 'ftp://a:***@krt'"),
    ({"AMI_URL": "ami://user@asterisk"}, "AMI_URL: bad AMI URL 'ami://user@asterisk' (expected ami://user:secret@host:port):"
                                         " no secret"),
    ({"PERSONAL_URL": "personal:8095"}, "PERSONAL_URL: expected http(s)://host[:port]"),
    ({"PARTITIONS": "0"}, "PARTITIONS: Input should be greater than or equal to 1"),
    ({"PARTITIONS": "four"}, "PARTITIONS: Input should be a valid integer"),
    ({"LOG_FORMAT": "jsonl"}, "LOG_FORMAT: Input should be 'json' or 'text'"),
    ({"AUTH_TOKENS": "abc"}, "AUTH_TOKENS: AUTH_TOKENS entry 'abc' must be token=role or token=role:user"),
    ({"MIN_INSYNC_REPLICAS": "2"}, "MIN_INSYNC_REPLICAS (2) must not exceed REPLICATION_FACTOR (1)"),
    ({"KRT_RETRY_FIRST_S": "10", "KRT_RETRY_MAX_S": "5"}, "KRT_RETRY_MAX_S must not be below KRT_RETRY_FIRST_S"),
    ({"IVR_DEFAULT_CALLER_NUMBER": "nobody"}, "IVR_DEFAULT_CALLER_NUMBER: 'nobody' is not a phone number"),
], ids=["krt-without-credentials", "krt-scheme", "ami-without-secret", "personal-without-scheme", "partitions-zero",
        "partitions-word", "log-format", "auth-tokens", "min-isr-over-rf", "krt-retries", "ivr-default-number"])
def test_a_wrong_setting_is_one_line_that_starts_with_its_variable(environ, expected):
    (problem,) = check_settings(environ)
    assert problem.startswith(expected)


def test_secrets_never_appear_in_the_problems():
    problems = check_settings({"KRT_URL": "ftp://client:hunter2@krt", "AMI_URL": "ami://u:hunter3@"})
    assert len(problems) == 2 and not any("hunter" in p for p in problems)


def test_credentials_beside_the_krt_url_are_enough():
    assert check_settings({"KRT_URL": "https://krt.example.org", "KRT_CLIENT_ID": "taxi", "KRT_CLIENT_SECRET": "s"}) == []


def test_empty_integration_urls_mean_off_not_wrong():
    assert check_settings({"AMI_URL": "", "KRT_URL": "", "PERSONAL_URL": " ", "MIN_INSYNC_REPLICAS": ""}) == []


def test_a_placeholder_left_is_named_whatever_else_is_right():
    problems = check_settings({"AUTH_TOKENS": PLACEHOLDER, "KRT_URL": f"https://{PLACEHOLDER}.example"})
    assert [p.split(":")[0] for p in problems] == ["AUTH_TOKENS", "KRT_URL"]
    assert all(PLACEHOLDER in p for p in problems)


def test_check_settings_leaves_the_environment_as_it_found_it(monkeypatch):
    monkeypatch.setenv("WINDOW_S", "30")
    check_settings({"WINDOW_S": "0"})
    import os

    assert os.environ["WINDOW_S"] == "30" and "KRT_URL" not in os.environ


def test_shown_settings_mask_tokens_secrets_and_url_passwords():
    assert masked("auth_tokens", "t1=manager,t2=client:c1") == "***=manager,***=client:c1"
    assert masked("krt_client_secret", "s") == "***"
    assert masked("ami_url", "ami://u:hunter2@asterisk:5038") == "ami://u:***@asterisk:5038"
    assert masked("krt_url", None) == ""
    assert masked("window_s", 60) == "60"


def test_check_config_prints_the_settings_in_effect_or_the_problems(capsys, monkeypatch):
    monkeypatch.setenv("AUTH_TOKENS", "sekret=manager")
    assert check_config(Namespace(quiet=False)) == 0
    out = capsys.readouterr().out
    assert "AUTH_TOKENS=***=manager" in out and "sekret" not in out and "# CallCenterSettings" in out
    monkeypatch.setenv("WINDOW_S", "0")
    assert check_config(Namespace(quiet=True)) == 2
    err = capsys.readouterr().err
    assert "WINDOW_S: Input should be greater than or equal to 1" in err


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env})


def test_a_worker_with_a_wrong_setting_stops_with_json_lines_and_exit_code_2():
    done = _run("worker", "-l", "info", KRT_URL="http://krt:8088", PARTITIONS="0")
    assert done.returncode == 2 and done.stdout == ""
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["setting"] for line in lines] == ["PARTITIONS", "KRT_URL"]
    assert all(line["level"] == "error" and line["msg"].startswith("cannot start: ") for line in lines)


def test_with_text_logs_the_refusal_is_plain_text():
    done = _run("ingest", "queue-log", "/dev/null", LOG_FORMAT="text", PARTITIONS="-1")
    assert done.returncode == 2
    expected = "ERROR switchboard.settings cannot start: PARTITIONS: Input should be greater than or equal to 1"
    assert done.stderr.strip() == expected


def test_the_doubles_are_commands_of_their_own():
    for verb in ("ami-double", "krt-sandbox", "personal"):
        done = _run(verb, "--help")
        assert done.returncode == 0 and "--host" in done.stdout, verb


def test_the_shared_defaults_are_a_working_development_setup():
    settings = Settings()
    assert settings.min_insync_replicas is None and settings.log_format == "json"
    assert check_settings({}) == []
