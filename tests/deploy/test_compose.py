"""docker-compose.yml: valid, the production shape in miniature, and every service's command and
environment accepted by the image built from the Dockerfile (tests/deploy/conftest.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from app.config import env_names
from tests.deploy.conftest import COMPOSE_FILE, ROOT, clean_env, compose, compose_config, env_of, image_env, our_services

PROFILES = ("demo", "monitoring")


def compose_spec_schema() -> dict:
    """The Compose Specification's JSON schema, as check-jsonschema vendors it (read as data:
    importing check_jsonschema itself needs a click newer than Faust allows)."""
    import importlib.util

    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations, "check-jsonschema is missing: make install"
    path = Path(next(iter(spec.submodule_search_locations))) / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def demo() -> dict:
    return compose_config("demo")


def test_docker_compose_itself_accepts_the_file_with_every_profile():
    for profiles in ((), ("demo",), ("monitoring",), PROFILES):
        flags = [arg for profile in profiles for arg in ("--profile", profile)]
        done = compose(*flags, "config", "--quiet")
        assert done.returncode == 0, f"profiles {profiles}: {done.stderr}"


def test_the_file_is_valid_against_the_compose_specification():
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(yaml.safe_load(COMPOSE_FILE.read_text())), key=lambda e: list(e.path))
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors] == []


def test_three_kraft_brokers_form_one_cluster_with_three_replicas_and_two_in_sync(demo):
    brokers = {name: env_of(s) for name, s in demo["services"].items() if name.startswith("kafka-")}
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in brokers.items()}
    for name, env in brokers.items():
        assert demo["services"][name]["hostname"] == name
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert f"PLAINTEXT://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    assert len({env["KAFKA_NODE_ID"] for env in brokers.values()}) == 3
    host_ports = [port["published"] for s in brokers for port in demo["services"][s].get("ports", [])]
    assert len(set(host_ports)) == 3, "each broker is reachable from the host on a port of its own"


def test_three_workers_each_with_its_own_name_and_volume_replicate_everything_three_times(demo):
    workers = {name: s for name, s in demo["services"].items() if name.startswith("worker-")}
    assert sorted(workers) == ["worker-1", "worker-2", "worker-3"]
    volumes = set()
    for name, service in workers.items():
        env = env_of(service)
        assert env["WEB_HOST"] == service["hostname"] == name, "other workers reach it by its WEB_HOST"
        assert (env["REPLICATION_FACTOR"], env["MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert {b.split(":")[0] for b in env["KAFKA_BOOTSTRAP"].split(",")} == {"kafka-1", "kafka-2", "kafka-3"}
        assert set(service["depends_on"]) == {"kafka-1", "kafka-2", "kafka-3"}
        (data,) = [v for v in service["volumes"] if v["target"] == env["DATA_DIR"]]
        volumes.add(data["source"])
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert len(volumes) == 3, "RocksDB is a per-worker store"
    assert env_of(workers["worker-1"])["PARTITIONS"] == env_of(demo["services"]["kafka-1"])["KAFKA_NUM_PARTITIONS"]


def test_the_demo_profile_wires_the_simulator_and_the_three_doubles_by_compose_host_names(demo):
    services = demo["services"]
    assert {"simulator", "ami-double", "krt-sandbox", "personal"} <= set(services)
    assert not {"simulator", "ami-double", "krt-sandbox", "personal"} & set(compose_config()["services"])

    def option(service: str, name: str) -> str:
        command = services[service]["command"]
        return command[command.index(name) + 1]

    for name in ("ami-double", "krt-sandbox", "personal"):
        assert option(name, "--host") == "0.0.0.0", f"{name} must listen beyond its container"
    env = env_of(services["worker-2"])
    ami = urlsplit(env["AMI_URL"])
    assert (ami.hostname, ami.port) == (services["ami-double"]["hostname"], int(option("ami-double", "--port")))
    assert (ami.username, ami.password) == (option("ami-double", "--username"), option("ami-double", "--secret"))
    krt = urlsplit(env["KRT_URL"])
    assert (krt.hostname, krt.port) == (services["krt-sandbox"]["hostname"], int(option("krt-sandbox", "--port")))
    assert (env["KRT_CLIENT_ID"], env["KRT_CLIENT_SECRET"]) == (option("krt-sandbox", "--client-id"),
                                                                option("krt-sandbox", "--client-secret"))
    personal = urlsplit(env["PERSONAL_URL"])
    assert (personal.hostname, personal.port) == (services["personal"]["hostname"], int(option("personal", "--port")))
    assert services["simulator"]["command"][0] == "simulate"
    assert set(services["simulator"]["depends_on"]) == {"worker-1"}


def test_the_readmes_demo_tokens_open_what_the_readme_says_they_open(demo):
    roles = {}
    for pair in env_of(demo["services"]["worker-1"])["AUTH_TOKENS"].split(","):
        token, _, who = pair.partition("=")
        roles[token] = who.partition(":")[0]
    readme = (ROOT / "README.md").read_text()
    expected = {"dev-manager-token": "manager", "dev-service-token": "service", "dev-admin-token": "admin",
                "dev-driver-token": "driver", "dev-client-token": "client", "dev-operator-token": "operator"}
    for token, role in expected.items():
        assert token in readme
        assert roles.get(token) == role, f"{token} should be a {role} token in compose's AUTH_TOKENS"


def test_an_integration_set_empty_in_the_shell_is_off_not_pointed_at_a_double():
    env = env_of(compose_config(env=clean_env(AMI_URL="", KRT_URL="", PERSONAL_URL=""))["services"]["worker-1"])
    assert (env["AMI_URL"], env["KRT_URL"], env["PERSONAL_URL"]) == ("", "", "")


def test_every_variable_given_to_our_image_is_a_real_setting(demo):
    known = set(env_names())
    for name, service in our_services(compose_config(*PROFILES)).items():
        unknown = set(env_of(service)) - known
        assert unknown == set(), f"{name} sets {sorted(unknown)}, which no setting reads"
    assert set(our_services(demo)) == {"worker-1", "worker-2", "worker-3", "simulator", "ami-double", "krt-sandbox",
                                       "personal"}


def test_each_service_of_our_image_runs_its_command_from_the_images_files(image, demo):
    """Each command parses (its options checked, then --help) and each environment is accepted
    by every setting, from an install of the files the Dockerfile copies and nothing else."""
    base = {**image_env(), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    for name, service in our_services(demo).items():
        env = {**base, **env_of(service)}
        command = service.get("command") or ["worker", "-l", "info"]
        done = image.run([*command, "--help"], env)
        assert done.returncode == 0, f"{name}: {command}: {done.stderr[-1500:]}"
        if command[0] == "worker":
            done = image.run(["check-config", "--quiet"], env)
            assert done.returncode == 0, f"{name}: {done.stderr}"


def test_each_workers_environment_builds_the_whole_app_from_the_images_files(image, demo):
    """What a worker does before it connects anywhere: every setting read, the app created,
    every domain module imported (Faust's autodiscovery), all from the image's files."""
    code = (
        "import importlib, pkgutil\n"
        "import app.main as main\n"
        "names = []\n"
        "for package in [*main.SHARED_SERVICES, *main.DOMAIN_PACKAGES]:\n"
        "    module = importlib.import_module(package)\n"
        "    names.append(module.__name__)\n"
        "    for found in pkgutil.walk_packages(getattr(module, '__path__', []), package + '.'):\n"
        "        names.append(importlib.import_module(found.name).__name__)\n"
        "import sys\n"
        "outside = sorted(n for n, m in sys.modules.items() if n.split('.')[0] in ('app', 'agents', 'tables', 'web', 'dev')\n"
        "                 and getattr(m, '__file__', None) and not m.__file__.startswith(sys.path[0]))\n"
        "assert not outside, outside\n"
        "print(len(names), main.app.conf.id, main.settings.web_host, main.settings.replication_factor)\n"
    )
    base = {**image_env(), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    for name in ("worker-1", "worker-2", "worker-3"):
        env = {**base, **env_of(demo["services"][name])}
        done = image.python(code, env)
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
        modules, app_id, web_host, replicas = done.stdout.split()
        assert (app_id, web_host, replicas) == ("switchboard", name, "3") and int(modules) >= 12


# what the apache/kafka image does with its environment: KAFKA_FOO_BAR -> foo.bar in server.properties
# (___ -> -, __ -> _), but for the variables its scripts read themselves
KAFKA_IMAGE_OWN = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS",
                   "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL"}


def broker_properties(env: dict[str, str]) -> dict[str, str]:
    found = {}
    for key, value in env.items():
        if key.startswith("KAFKA_") and key not in KAFKA_IMAGE_OWN:
            name = key.removeprefix("KAFKA_").lower().replace("___", "-").replace("__", "\0").replace("_", ".")
            found[name.replace("\0", "_")] = value
    return found


def test_kafka_itself_accepts_each_brokers_configuration(demo, tmp_path):
    """Every KAFKA_* variable is a broker setting Kafka 4.1 knows, and the configuration built
    from them is valid (the KRaft quorum, the listeners, the replica settings)."""
    jars = ROOT / "dev/kafka/target/dependency"
    assert jars.is_dir(), "the Kafka jars: make dev/kafka/target/dependency/.resolved"
    files = []
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        path = tmp_path / f"{name}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(broker_properties(env_of(demo["services"][name])).items())))
        files.append(str(path))
    done = subprocess.run(["java", "-cp", f"{jars}/*", str(Path(__file__).parent / "KafkaConfigCheck.java"), *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == [f"ok {f}" for f in files], done.stdout


def test_every_file_compose_mounts_is_in_the_repository():
    config = compose_config(*PROFILES)
    binds = [(name, volume["source"]) for name, service in config["services"].items()
             for volume in service.get("volumes", []) if volume["type"] == "bind"]
    assert {name for name, _ in binds} == {"prometheus", "grafana"}
    for name, source in binds:
        path = Path(source)
        assert path.is_relative_to(ROOT) and path.exists(), f"{name} mounts {source}, which is not in the repository"
    config_files = {Path(source) / "prometheus.yml" for name, source in binds if name == "prometheus"}
    assert all(path.is_file() for path in config_files)
