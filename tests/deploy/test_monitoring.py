"""deploy/: Prometheus's alert rules and scrape config as promtool reads them, each alert firing where
it should and quiet where it should not (promtool's own rule unit tests, written here from the cases
below), and a Grafana dashboard whose every query names a metric the service exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.deploy.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "switchboard.json"
METRIC = re.compile(r"\b((?:switchboard|process|python)_[a-z0-9_]+)")

# alert -> (input series: name{labels} -> promtool values, firing at, quiet at, the labels it fires with).
# Each case has a troubled worker (w1) and a healthy one (w2): only w1 may fire.
CASES = {
    "SwitchboardWorkerDown": (
        {'up{job="switchboard", instance="w1"}': "1 1 0 0 0 0", 'up{job="switchboard", instance="w2"}': "1x6"},
        "5m", "3m", {"job": "switchboard", "instance": "w1"}),
    "SwitchboardWorkerNotReady": (
        {'switchboard_ready{job="switchboard", instance="w1"}': "1 0 0 0 0 0 0 0",
         'switchboard_ready{job="switchboard", instance="w2"}': "1 0 0 1 1 1 1 1"},  # a two-minute rebalance
        "7m", "4m", {"job": "switchboard", "instance": "w1"}),
    "SwitchboardConsumerLagGrowing": (
        {'switchboard_consumer_lag_records{job="switchboard", instance="w1", topic="qapp-events", partition="0"}': "0+200x30",
         'switchboard_consumer_lag_records{job="switchboard", instance="w2", topic="qapp-events", partition="1"}': "6000-100x30"},
        "25m", "10m", {"instance": "w1", "topic": "qapp-events"}),
    "SwitchboardAnswersStale": (
        {'switchboard_answers_stale{job="switchboard", instance="w1", topic="qapp-events"}': "0 1 1 1 1 1",
         'switchboard_answers_stale{job="switchboard", instance="w2", topic="qapp-events"}': "0 0 1 0 0 0"},
        "4m", "1m", {"instance": "w1", "topic": "qapp-events"}),
    "SwitchboardDeadLetters": (
        {'switchboard_events_rejected_total{job="switchboard", instance="w1", topic="qapp-events", reason="malformed"}':
             "0 0 0 0 0+5x20",
         'switchboard_events_rejected_total{job="switchboard", instance="w2", topic="ivr-commands", reason="invalid"}':
             "0 0 0 1 1 1 1 1 1 1 2 2 2 2 2 2 2 2 2 2"},  # one now and then
        "15m", "3m", {"topic": "qapp-events", "reason": "malformed"}),
    "SwitchboardKrtBreakerOpen": (
        {'switchboard_deptrans_krt_breaker_open{job="switchboard", instance="w1"}': "0 1 1 1 1 1 1 1",
         'switchboard_deptrans_krt_breaker_open{job="switchboard", instance="w2"}': "0 1 0 1 0 1 0 1"},
        "7m", "3m", {"instance": "w1"}),
    "SwitchboardAmiDisconnected": (
        {'switchboard_ami_connected{job="switchboard", instance="w1"}': "1 0 0 0 0",
         'switchboard_integration_enabled{job="switchboard", instance="w1", integration="ami"}': "1x5",
         'switchboard_ami_connected{job="switchboard", instance="w2"}': "0x5",  # AMI_URL unset there: off, not down
         'switchboard_integration_enabled{job="switchboard", instance="w2", integration="ami"}': "0x5"},
        "4m", "1m", {"job": "switchboard", "instance": "w1"}),
    "SwitchboardDeliveryFailures": (
        {'switchboard_delivery_failures_total{job="switchboard", instance="w1"}': "0 0 0 1 1 1 1 1 1 1 1 1 1",
         'switchboard_delivery_failures_total{job="switchboard", instance="w2"}': "0x12"},
        "4m", "12m", {"job": "switchboard", "instance": "w1"}),
    "SwitchboardHttp500": (
        {'switchboard_http_internal_errors_total{job="switchboard", instance="w1"}': "0 0 0 0+3x12",
         'switchboard_http_internal_errors_total{job="switchboard", instance="w2"}': "0x15"},
        "13m", "2m", {"instance": "w1"}),
}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: make promtool (Debian's prometheus package)"
    return found


def rules() -> dict[str, dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def rendered(template: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus renders it for these labels (our templates use labels only)."""
    assert "$value" not in template, "a test cannot know $value: keep it out of annotations"
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)


def test_promtool_accepts_the_rules_and_the_scrape_config():
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_the_operators_need_exist_each_with_advice():
    alerts = rules()
    assert set(alerts) == set(CASES)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80, name


def test_each_alert_fires_for_the_troubled_worker_and_stays_quiet_otherwise(tmp_path):
    alerts = rules()
    tests = []
    for name, (series, firing_at, quiet_at, labels) in CASES.items():
        rule = alerts[name]
        fired = {**labels, **rule["labels"]}
        tests.append({
            "name": name,
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [
                {"eval_time": firing_at, "alertname": name, "exp_alerts": [{
                    "exp_labels": fired,
                    "exp_annotations": {k: rendered(v, fired) for k, v in rule["annotations"].items()}}]},
                {"eval_time": quiet_at, "alertname": name, "exp_alerts": []},
            ],
        })
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "alerts.test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    done = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel(dashboard):
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] == "switchboard" and len(panels) >= 12
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["title"] and panel["datasource"]["uid"] == "${datasource}", panel.get("title")
        assert panel["targets"] and all(METRIC.search(t["expr"]) for t in panel["targets"]), panel["title"]


def test_grafana_is_provisioned_with_the_prometheus_of_compose_and_this_dashboard():
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "switchboard.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def used_metrics() -> dict[str, set[str]]:
    """Every metric name the alerts and the dashboard query -> where."""
    found: dict[str, set[str]] = {}
    texts = {"alerts.yml": "\n".join(r["expr"] for r in rules().values()),
             "the dashboard": "\n".join(t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
                                        for t in p.get("targets", []))}
    for where, text in texts.items():
        for name in METRIC.findall(text):
            found.setdefault(name, set()).add(where)
    return found


def exposed_family(name: str, families: set[str]) -> bool:
    """Whether a queried series belongs to an exposed family (histograms: _bucket, _sum, _count)."""
    return name in families or any(name == f + suffix for f in families for suffix in ("_bucket", "_sum", "_count"))


def unknown_metrics(metrics_text: str) -> dict[str, set[str]]:
    families = {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# TYPE ")}
    return {name: where for name, where in used_metrics().items() if not exposed_family(name, families)}


def test_every_metric_queried_is_exposed_by_the_service():
    """From an interpreter that imports every domain as a worker does (tests/integration checks a
    running worker's /metrics the same way)."""
    code = ("import importlib, pkgutil\n"
            "import app.main as main\n"
            "from app import metrics\n"
            "from prometheus_client import generate_latest\n"
            "for package in [*main.SHARED_SERVICES, *main.DOMAIN_PACKAGES]:\n"
            "    module = importlib.import_module(package)\n"
            "    for found in pkgutil.walk_packages(getattr(module, '__path__', []), package + '.'):\n"
            "        importlib.import_module(found.name)\n"
            "print(generate_latest(metrics.REGISTRY).decode())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "# TYPE switchboard_events_in_total counter" in done.stdout
    assert unknown_metrics(done.stdout) == {}
