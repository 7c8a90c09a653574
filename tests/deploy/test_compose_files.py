"""The compose files: valid against the Compose Specification's JSON schema
(vendored in tests/deploy/schema/, see its README), and consistent with the
files they mount. No Docker engine runs here; what only one can check is
listed in deploy/README.md ("What is tested where")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import (
    AGENT_CONFIG,
    CENTRAL_CONFIG,
    COMPOSE_FILES,
    COMPOSE_SCHEMA,
    DASHBOARDS_DIR,
    DEPLOY,
    load_dashboard,
)

VOLUNTEER = DEPLOY / "volunteer"
WATCHDOG = DEPLOY / "watchdog"


def _compose(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def _validator() -> None:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.fail(
            "check-jsonschema is missing: it is in the project's test extras (pip install -e '.[test]')"
        )


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_mistake(tmp_path: Path) -> None:
    doc = _compose(VOLUNTEER / "compose.yaml")
    doc["services"]["msgprobe"]["readonly"] = True  # the key is read_only
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = _validate(bad)
    assert result.returncode != 0
    assert "readonly" in result.stdout + result.stderr


def _bind_sources(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                out.append((source, target))
    return out


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_every_bind_mount_exists_in_the_repository(path: Path) -> None:
    for source, _ in _bind_sources(_compose(path)):
        assert (path.parent / source).exists(), f"{path}: {source} does not exist"


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<modifier>:?[-?][^}]*)?\}")


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_every_variable_is_documented_in_env_example(path: Path) -> None:
    example = (path.parent / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    for m in _INTERPOLATION.finditer(path.read_text()):
        assert m["name"] in documented, f"{path}: ${{{m['name']}}} is not in .env.example"
        if m["modifier"] and m["modifier"].startswith(":?"):
            # Required: the example must set it, not just mention it.
            assert re.search(rf"^{m['name']}=\S", example, flags=re.MULTILINE), m["name"]


def _image_is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and tag not in {"", "latest"} and "/" not in tag


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_images_are_pinned(path: Path) -> None:
    for name, service in _compose(path)["services"].items():
        image = service["image"]
        if "build" in service:
            continue  # built from this repository
        assert _image_is_pinned(image), f"{path}: {name} uses {image}"


def test_volunteer_msgprobe_runs_locked_down() -> None:
    doc = _compose(VOLUNTEER / "compose.yaml")
    probe = doc["services"]["msgprobe"]
    assert probe["build"]["context"] == "../.." and (VOLUNTEER / "../../Dockerfile").resolve().is_file()
    assert probe["read_only"] is True
    assert probe["cap_drop"] == ["ALL"] and "cap_add" not in probe
    assert "no-new-privileges:true" in probe["security_opt"]
    assert "user" not in probe  # the image's non-root user
    assert "msgprobe-state:/var/lib/msgprobe" in probe["volumes"]
    # The status page is for the volunteer's own machine only.
    assert all(p.startswith("127.0.0.1:") for p in probe["ports"])


def test_volunteer_agent_pushes_with_the_shipped_config() -> None:
    doc = _compose(VOLUNTEER / "compose.yaml")
    agent = doc["services"]["agent"]
    assert "--agent" in agent["command"]
    assert "ports" not in agent  # it only connects out
    mounts = dict(_bind_sources({"services": {"agent": agent}}))
    config_target = mounts["./prometheus-agent.yml"]
    assert f"--config.file={config_target}" in agent["command"]
    # The token file the agent config reads is the compose secret.
    agent_config = yaml.safe_load(AGENT_CONFIG.read_text())
    token = agent_config["remote_write"][0]["authorization"]["credentials_file"]
    (secret,) = agent["secrets"]
    assert token == f"/run/secrets/{secret}"
    secret_file = VOLUNTEER / doc["secrets"][secret]["file"]
    assert secret_file.parent.is_dir()
    assert (secret_file.parent / ".gitignore").read_text().splitlines()[-2:] == ["*", "!.gitignore"]
    # external_labels read the variables compose passes from .env.
    for label, value in agent_config["global"]["external_labels"].items():
        variable = value.strip("${}")
        assert variable in agent["environment"], label


def test_watchdog_prometheus_receives_remote_writes_and_loads_the_rules() -> None:
    doc = _compose(WATCHDOG / "compose.yaml")
    prom = doc["services"]["prometheus"]
    assert "--web.enable-remote-write-receiver" in prom["command"]
    mounts = dict(_bind_sources({"services": {"prometheus": prom}}))
    assert mounts["./prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    rules_target = mounts["../prometheus/rules"]
    central = yaml.safe_load(CENTRAL_CONFIG.read_text())
    assert central["rule_files"] == [f"{rules_target}/*.yml"]
    assert central["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    am = doc["services"]["alertmanager"]
    assert (
        dict(_bind_sources({"services": {"am": am}}))["./alertmanager.yml"]
        == "/etc/alertmanager/alertmanager.yml"
    )


def test_watchdog_grafana_provisions_the_datasource_and_dashboards() -> None:
    doc = _compose(WATCHDOG / "compose.yaml")
    grafana = doc["services"]["grafana"]
    mounts = dict(_bind_sources({"services": {"grafana": grafana}}))
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "msgprobe.yml").read_text())["providers"]
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (DASHBOARDS_DIR / Path(home).name).is_file()
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "msgprobe.yml").read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    for path in DASHBOARDS_DIR.glob("*.json"):
        (var,) = [v for v in load_dashboard(path)["templating"]["list"] if v["name"] == "datasource"]
        assert var["current"]["value"] == datasource["uid"], path.name
