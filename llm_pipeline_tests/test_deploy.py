"""deploy/ cannot run here, so everything in it that can be checked locally is checked.

Every YAML file parses; Kubernetes manifests and the Kubernetes fragments of the Helm values are
built into the `kubernetes` client's models, which refuse unknown keys; the run launcher's config
and the instance's `concurrency` block are rendered as the chart renders them and validated by the
installed dagster and dagster-k8s; a run pod is built with dagster-k8s's own Job constructor; the
modules and classes the files name are imported; the image pins the installed Dagster line.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.pipeline.resources import ClaudeResource

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
CELERY = DEPLOY / "celery"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _values() -> dict[str, Any]:
    (values,) = _docs(K8S / "values.yaml")
    return values


def _deployment() -> dict[str, Any]:
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    return deployment


def _k8s_model(kind: str, body: dict[str, Any]) -> Any:
    """Build a kubernetes client model from manifest-style (camelCase) YAML; unknown keys raise.

    dagster_k8s and the kubernetes client are imported where used (here and in the two run launcher
    tests): ~1.7 s that every pytest process collecting this module would otherwise pay.
    """
    import kubernetes.client
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

    model = getattr(kubernetes.client, kind)
    return k8s_model_from_dict(model, k8s_snake_case_dict(model, body))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {f.relative_to(DEPLOY).as_posix() for f in files} >= {
        "k8s/values.yaml",
        "k8s/redis.yaml",
        "k8s/storage.yaml",
        "k8s/minio.yaml",
        "celery/worker.yaml",
        "celery/workspace.yaml",
        "celery/dagster.yaml",
    }
    for path in files:
        assert _docs(path), f"{path} is empty"


@pytest.mark.parametrize("manifest", ["redis.yaml", "minio.yaml", "storage.yaml"])
def test_kubernetes_manifests_are_valid_objects(manifest: str) -> None:
    for doc in _docs(K8S / manifest):
        group_version = doc["apiVersion"].split("/")[-1]
        obj = _k8s_model(f"{group_version.capitalize()}{doc['kind']}", doc)
        assert obj.metadata.name.startswith("llm-pipeline-")


def test_redis_keeps_the_ledger_durable_and_serves_the_url_in_the_values() -> None:
    manifests = {doc["kind"]: doc for doc in _docs(K8S / "redis.yaml")}
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    service = manifests["Service"]
    env = {e["name"]: e["value"] for e in _deployment()["env"]}
    port = service["spec"]["ports"][0]["port"]
    assert env["LLM_PIPELINE_STATE"] == f"redis://{service['metadata']['name']}:{port}/0"


def test_the_user_code_deployment_serves_the_projects_definitions() -> None:
    args = _deployment()["dagsterApiGrpcArgs"]
    assert args[0] == "-m"
    module = importlib.import_module(args[1])
    dg.Definitions.validate_loadable(module.defs)
    assert "daily_pipeline" in {job.name for job in module.defs.get_repository_def().get_all_jobs()}
    assert _deployment()["includeConfigInLaunchedRuns"]["enabled"] is True


def test_the_values_env_configures_the_resources_as_intended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's env, read by the real resources: shared Redis state, a share of the learned limits, S3."""
    env = {e["name"]: e["value"] for e in _deployment()["env"]}
    for item in _deployment()["env"]:
        _k8s_model("V1EnvVar", item)
    assert "ANTHROPIC_API_KEY" not in env, "the key comes from a Secret, never from plain values"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-secret")
    with dg.build_resources({"claude": ClaudeResource(), "pipeline_config": PipelineConfig()}) as resources:
        settings = resources.claude.settings
        data_dir = resources.pipeline_config.settings().data_dir
    warehouse = ParquetIOManager().path_for(dg.AssetKey("classifications"), "2026-11-20")
    assert resources.claude.backend_name == "anthropic"
    assert settings.state == env["LLM_PIPELINE_STATE"]
    assert (settings.rpm, settings.itpm, settings.otpm) == (None, None, None), "learned, not typed in"
    assert settings.limit_share == float(env["LLM_PIPELINE_LIMIT_SHARE"])
    assert settings.max_concurrency == int(env["LLM_PIPELINE_MAX_CONCURRENCY"])
    assert str(data_dir) == env["LLM_PIPELINE_DATA_DIR"] == "s3://llm-pipeline-data/pipeline"
    assert str(warehouse) == f"{env['LLM_PIPELINE_DATA_DIR']}/warehouse/classifications/2026-11-20.parquet"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & env.keys(), "store keys: a Secret or a role"


def test_the_pods_need_no_shared_volume_and_minio_is_one_setting_away() -> None:
    """The object store replaces the ReadWriteMany claim; the MinIO manifest matches the commented
    endpoint and Secret of the values."""
    deployment = _deployment()
    assert "volumes" not in deployment
    assert "volumeMounts" not in deployment
    values_text = (K8S / "values.yaml").read_text()
    manifests = {doc["kind"]: doc for doc in _docs(K8S / "minio.yaml")}
    service = manifests["Service"]
    endpoint = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert f'#   value: "{endpoint}"' in values_text
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    secrets = {item["valueFrom"]["secretKeyRef"]["name"] for item in container["env"]}
    assert secrets == {"llm-pipeline-store"}
    assert "# - name: llm-pipeline-store" in values_text


def _env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {name: value for name, value in pairs}


def test_the_celery_machines_share_the_object_store_not_a_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env_file(CELERY / "pipeline.env")
    assert not [name for name in env if re.search(r"KEY|SECRET|PASSWORD|USER", name)], "no secret in the file"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.build_resources({"pipeline_config": PipelineConfig()}) as resources:
        data_dir = resources.pipeline_config.settings().data_dir
    assert str(data_dir).startswith("s3://")
    assert str(ParquetIOManager().path_for(dg.AssetKey("corpus_report"), "2026-11-20")).startswith(
        str(data_dir)
    )
    assert env["LLM_PIPELINE_STATE"].startswith("redis://")
    assert env["DAGSTER_CELERY_BROKER_URL"] != env["LLM_PIPELINE_STATE"]


def _rendered_run_launcher() -> dict[str, Any]:
    """`run_launcher.config` as the chart's `dagsterYaml.runLauncher.k8s` template renders our values."""
    k8s = _values()["runLauncher"]["config"]["k8sRunLauncher"]
    return {
        "load_incluster_config": k8s.get("loadInclusterConfig", True),
        "job_namespace": k8s.get("jobNamespace") or "llm-pipeline",
        "image_pull_policy": k8s.get("imagePullPolicy", "Always"),
        "service_account_name": "dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
        "run_k8s_config": {_snake(key): value for key, value in k8s["runK8sConfig"].items()},
    }


@pytest.fixture
def chart_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables the chart sets on the daemon, which its rendered config refers to."""
    for name, value in {
        "DAGSTER_HOME": "/opt/dagster/dagster_home",
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("chart_env")
def test_the_run_launcher_config_validates_against_dagster_k8s() -> None:
    from dagster_k8s import K8sRunLauncher

    assert _values()["runLauncher"]["type"] == K8sRunLauncher.__name__
    result = validate_config(K8sRunLauncher.config_type(), _rendered_run_launcher())
    assert result.success, result.errors


def test_a_run_pod_built_by_dagster_k8s_carries_the_state_url_store_secret_and_limits() -> None:
    """What K8sRunLauncher launches per run: the deployment's settings plus `runK8sConfig`."""
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    deployment = _deployment()
    image = deployment["image"]
    job_config = DagsterK8sJobConfig(
        job_image=f"{image['repository']}:{image['tag']}",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        env_secrets=[secret["name"] for secret in deployment["envSecrets"]],
    )
    user_config = UserDefinedDagsterK8sConfig.from_dict(_rendered_run_launcher()["run_k8s_config"])
    job = construct_dagster_k8s_job(
        job_config,
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0123456789",
        user_defined_k8s_config=user_config,
        env_vars=deployment["env"],
    )
    (container,) = job.spec.template.spec.containers
    env = {e.name: e.value for e in container.env}
    assert env["LLM_PIPELINE_STATE"].startswith("redis://")
    assert env["LLM_PIPELINE_DATA_DIR"].startswith("s3://")
    assert env["AWS_REGION"]
    assert [source.secret_ref.name for source in container.env_from if source.secret_ref] == [
        "llm-pipeline-anthropic"
    ]
    assert not job.spec.template.spec.volumes  # no shared volume: the data is on the object store
    assert container.resources.limits["memory"] == "2Gi"
    assert job.spec.ttl_seconds_after_finished == 86400
    _k8s_model("V1ResourceRequirements", deployment["resources"])


def _rendered_instance(tmp_path: Path) -> Path:
    """The `run_coordinator` and `concurrency` parts of the dagster.yaml the chart renders."""
    values = _values()
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator_config = {_snake(k): v for k, v in queued.items() if v not in (None, [])}
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    rendered = {
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            **({"config": coordinator_config} if coordinator_config else {}),
        },
        "concurrency": {
            section: {_snake(k): v for k, v in concurrency[section].items()} for section in ("runs", "pools")
        },
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    return tmp_path


def test_the_instance_concurrency_settings_load_without_conflicts(tmp_path: Path) -> None:
    """Dagster refuses run limits set both in the run coordinator and in `concurrency`."""
    config, _ = dagster_instance_config(str(_rendered_instance(tmp_path)))
    runs, pools = config["concurrency"]["runs"], config["concurrency"]["pools"]
    assert [limit["key"] for limit in runs["tag_concurrency_limits"]] == [
        "dagster/backfill",
        "dagster/partition",
    ]
    assert runs["tag_concurrency_limits"][1] == {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }
    assert runs["tag_concurrency_limits"][0]["limit"] < runs["max_concurrent_runs"]
    assert pools["default_limit"] >= 1
    assert pools["granularity"] in {"op", "run"}


def _deploy_group() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return dict(
        re.findall(r"^([a-z0-9-]+)==([0-9.]+)$", "\n".join(project["dependency-groups"]["deploy"]), re.M)
    )


def test_the_image_installs_the_lock_and_the_installed_dagster_line() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pins = _deploy_group()
    assert pins.keys() >= {"dagster-k8s", "dagster-celery", "dagster-postgres"}
    integration = importlib.metadata.version("dagster-k8s")
    assert set(pins.values()) == {integration}
    assert importlib.metadata.version("dagster-celery") == integration
    assert "COPY pyproject.toml uv.lock" in dockerfile
    syncs = re.findall(r"^RUN (uv sync .*)$", dockerfile, re.M)
    assert syncs
    assert all("--locked" in sync and "--group deploy" in sync for sync in syncs)
    uv_make = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert uv_make is not None
    assert f"uv=={uv_make.group(1)}" in dockerfile  # the same uv as `make install`
    assert '"llm_pipeline.definitions"' in dockerfile


@pytest.mark.slow
def test_the_image_build_steps_install_a_working_code_server(tmp_path: Path) -> None:
    """The Dockerfile's COPY and `uv sync` steps, replayed in a directory (no Docker engine here)."""
    uv = REPO_ROOT / ".tools" / "bin" / "uv"
    assert uv.is_file(), "run `make install` first: it installs the pinned uv into .tools/"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / ".venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
    }
    for line in re.findall(r"^(COPY [^\n]+|RUN uv sync [^\n]+)$", dockerfile, re.M):
        if line.startswith("COPY"):
            *sources, _ = line.split()[1:]
            for source in sources:
                origin = REPO_ROOT / source
                target = tmp_path / source if "/" in source else tmp_path / origin.name
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(origin, target)
            continue
        # The image builds without a cache; here the machine's uv cache saves the downloads.
        command = [str(uv), *line.removeprefix("RUN uv ").replace("--no-cache", "").split()]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    python = tmp_path / ".venv" / "bin" / "python"
    probe = (
        "import importlib.metadata as m, llm_pipeline.definitions as d, dagster_k8s, dagster_celery, "
        "dagster_postgres; print(m.version('dagster'), d.__file__)"
    )
    done = subprocess.run([str(python), "-c", probe], cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    version, module = done.stdout.split()
    assert version == dg.__version__
    assert module.startswith(str(tmp_path / ".venv"))  # installed, not an editable link to the repo
    assert not (tmp_path / ".venv" / "bin" / "pytest").exists()  # no dev tools in the image


@pytest.fixture
def celery_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(CELERY))
    yield importlib.import_module("llm_pipeline_celery")
    sys.modules.pop("llm_pipeline_celery", None)


def test_the_celery_variant_is_the_same_definitions_on_the_celery_executor(celery_module: Any) -> None:
    from dagster_celery import celery_executor

    from llm_pipeline.definitions import defs

    celery_defs = celery_module.defs
    dg.Definitions.validate_loadable(celery_defs)
    # What `-f llm_pipeline_celery.py` does: exactly one Definitions object at module scope.
    (target,) = loadable_targets_from_loaded_module(celery_module)
    assert target.attribute == "defs"
    job = celery_defs.resolve_job_def("daily_pipeline")
    assert job.executor_def.executor_creation_fn is celery_executor.executor_creation_fn
    assert set(celery_defs.resolve_all_asset_keys()) == set(defs.resolve_all_asset_keys())
    (location,) = _docs(CELERY / "workspace.yaml")[0]["load_from"]
    assert (CELERY / location["python_file"]["relative_path"]).is_file()


def test_the_celery_worker_config_and_instance_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://redis:6379/1")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://redis:6379/2")
    worker = get_validated_config(str(CELERY / "worker.yaml"))
    assert (worker["broker"], worker["backend"]) == ("redis://redis:6379/1", "redis://redis:6379/2")
    config, _ = dagster_instance_config(str(CELERY))
    assert "postgres" in config["storage"]
    assert config["concurrency"]["pools"]["default_limit"] >= 1
