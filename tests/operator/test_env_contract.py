"""Contract: the environment rendered for each component parses into the runtime's Settings."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ocr_contract import component_run
from ocr_operator.model import Component, Mode
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_runtime.core.settings import Device, EngineKind, Settings
from tests.operator._examples import EXAMPLES, example_spec

SECRETS = {
    ("ocr-database", "url"): "mysql+aiomysql://ocr:ocr@db:3306/ocr",
    ("ocr-redis", "url"): "redis://redis:6379/0",
    # The Secret the operator generates for a stack named demo (auth names none).
    ("demo-api-key", "hashes"): "a" * 64,
}


def _environment(manifests: dict[tuple[Kind, str], dict[str, Any]], name: str) -> dict[str, str]:
    container = manifests[(Kind.DEPLOYMENT, name)]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        config_map = manifests[(Kind.CONFIG_MAP, source["configMapRef"]["name"])]
        env.update(config_map["data"])
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = SECRETS[(ref["name"], ref["key"])]
    return env


@pytest.mark.parametrize("example", EXAMPLES)
def test_rendered_environment_parses_into_settings(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = example_spec(example)
    mode = spec.architecture.mode
    writer = mode is Mode.WRITER
    writers = frozenset({Component.WRITER}) if writer else frozenset()
    observed = Observed(worker_mode=mode, present=writers, ready=writers)
    manifests = {
        m.key: m.body
        for m in render(spec, Instance("demo", "ocr"), plan_transition(mode, observed))
    }
    deployments = [name for kind, name in manifests if kind is Kind.DEPLOYMENT]
    assert len(deployments) == (3 if mode is Mode.WRITER else 2)
    fields = {f"OCR_{name.upper()}" for name in Settings.model_fields}
    for name in deployments:
        env = _environment(manifests, name)
        assert set(env) - fields == set(), "every rendered OCR_ variable must be a setting"
        for key in list(os.environ):
            if key.startswith("OCR_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        # The API reads no mode: it gets none, so a mode switch does not roll it.
        component = Component(name.removeprefix("demo-"))
        assert ("OCR_MODE" in env) == (component is not Component.API)
        if component is not Component.API:
            assert settings.mode is component_run(component, mode)[1].mode
            assert settings.mode is mode.runtime
        assert settings.kafka_bootstrap == spec.kafka.bootstrap_servers
        assert settings.jobs_topic == spec.kafka.topics.jobs
        assert settings.results_topic == spec.kafka.topics.results
        assert settings.consumer_group == spec.kafka.consumer_group
        assert settings.engine is EngineKind(spec.engine.kind.value)
        assert settings.model_version == spec.engine.model_version
        assert settings.device is Device(spec.engine.device.value)
        assert settings.batch_max_size == spec.batching.max_size
        assert settings.http_port == spec.http_port
        assert settings.http_host == "0.0.0.0"
        assert settings.drain_seconds == spec.drain_seconds
        assert settings.database_url.startswith("mysql+aiomysql://")
        assert (settings.redis_url is not None) == (spec.redis is not None)
        assert settings.max_upload_bytes == spec.api.limits.max_upload_bytes
        assert settings.max_pixels == spec.api.limits.max_pixels
        assert settings.rate_limit_per_minute == spec.api.limits.rate_limit_per_minute
        # Authenticated by default: the API gets the digests, nothing else needs them.
        assert settings.api_key_hashes == (["a" * 64] if name.endswith("-api") else [])
