"""k8s/: valid for Kubernetes 1.30 (strict), every variable a real setting, the StatefulSet's
environment accepted once its placeholders are replaced, and refused, one line per placeholder,
until then (tests/deploy/conftest.py)."""

from __future__ import annotations

import json
import re

import kubernetes_validate
import pytest
import yaml

from app.config import PLACEHOLDER, env_names
from tests.deploy.conftest import K8S, image_env, k8s_documents, k8s_object

KUBERNETES = "1.30.0"
# what an operator would put in place of each placeholder (the values are only parsed here)
REPLACEMENTS = {
    "AUTH_TOKENS": "3f9ce1aa=manager,8a0b72bb=service,c41d9ecc=admin",
    "INTERNAL_TOKEN": "5d1e0f2a9b8c7d6e5f4a3b2c1d0e9f8a",
    "KRT_CLIENT_ID": "taxi-company",
    "KRT_CLIENT_SECRET": "s3cret",
    "AMI_URL": "ami://switchboard:s3cret@asterisk.telephony.svc:5038",
    "KRT_URL": "https://krt.example.org",
    "PERSONAL_URL": "http://personal.internal:8080",
}


def resources() -> list[str]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]


def container() -> dict:
    (worker,) = k8s_object("StatefulSet")["spec"]["template"]["spec"]["containers"]
    return worker


def pod_environment(replace: bool) -> dict[str, str]:
    """What the StatefulSet's worker container gets: the image's ENV, the ConfigMap and the Secret
    (envFrom), then its own env ($(VAR) expanded as the kubelet does), for pod switchboard-0."""
    env = {**image_env(), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    env.update({k: str(v) for k, v in k8s_object("ConfigMap")["data"].items()})
    env.update({k: str(v) for k, v in k8s_object("Secret")["stringData"].items()})
    for item in container()["env"]:
        if "valueFrom" in item:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = "switchboard-0"
        else:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
    if replace:
        env.update({name: REPLACEMENTS[name] for name, value in env.items() if PLACEHOLDER in value})
    return env


def test_kustomization_lists_every_manifest_and_only_those():
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(resources()) == present


@pytest.mark.parametrize("name", resources())
def test_each_manifest_is_valid_for_kubernetes_1_30_strictly(name):
    documents = k8s_documents(name)
    assert documents
    for document in documents:  # raises, naming the field, on anything 1.30 does not know
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_every_variable_the_pod_gets_is_a_real_setting_or_used_by_one():
    known = set(env_names())
    config = set(k8s_object("ConfigMap")["data"]) | set(k8s_object("Secret")["stringData"])
    assert config - known == set()
    own = {item["name"]: item for item in container()["env"]}
    referenced = {ref for item in own.values() for ref in re.findall(r"\$\((\w+)\)", item.get("value", ""))}
    assert set(own) - known <= referenced, "a variable that is no setting must at least feed one (POD_NAME -> WEB_HOST)"
    assert {"KAFKA_BOOTSTRAP", "PERSONAL_URL", "KRT_URL", "MIN_INSYNC_REPLICAS"} <= set(k8s_object("ConfigMap")["data"])
    assert {"AUTH_TOKENS", "INTERNAL_TOKEN", "KRT_CLIENT_ID", "KRT_CLIENT_SECRET", "AMI_URL"} <= set(
        k8s_object("Secret")["stringData"])


def test_the_pods_environment_builds_the_app_once_the_placeholders_are_replaced(image):
    env = pod_environment(replace=True)
    done = image.run(["check-config", "--quiet"], env)
    assert done.returncode == 0, done.stderr
    done = image.python("import app.main as m; print(m.settings.web_host, m.settings.canonical_url, m.settings.data_dir)", env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["switchboard-0.switchboard-workers", "http://switchboard-0.switchboard-workers:6066",
                                   "/data"]
    args = container()["args"]
    done = image.run([*args, "--help"], env)
    assert done.returncode == 0, done.stderr[-1500:]


def test_a_worker_with_placeholders_left_stops_with_one_line_naming_each(image):
    done = image.run(container()["args"], pod_environment(replace=False), timeout=60)
    assert done.returncode == 2
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert {line["setting"] for line in lines} == set(REPLACEMENTS)
    assert all(line["level"] == "error" and PLACEHOLDER in line["msg"] for line in lines)
    assert done.stdout == ""


def test_the_pod_runs_as_the_images_user_on_a_read_only_root_with_data_and_tmp_writable():
    dockerfile = (K8S.parent / "Dockerfile").read_text()
    (uid,) = re.findall(r"^USER (\d+):\d+$", dockerfile, re.M)
    pod = k8s_object("StatefulSet")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsNonRoot"]) == (int(uid), True)
    worker = container()
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert {pod_environment(replace=True)["DATA_DIR"], "/tmp"} <= mounts


def test_probes_and_ports_match_the_workers_settings():
    worker = container()
    (port,) = worker["ports"]
    assert port["containerPort"] == int(k8s_object("ConfigMap")["data"]["WEB_PORT"])
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert k8s_object("StatefulSet")["spec"]["serviceName"] == "switchboard-workers"
    assert pod_environment(replace=True)["WEB_HOST"].endswith(".switchboard-workers")
