"""Server settings: configs/serving.toml defaults, environment overrides, validation."""

from __future__ import annotations

import pytest

from sagetext import algorithms, specs
from sagetext.contract.cluster import cpu_count
from sagetext.errors import ClientError
from sagetext.serving.gunicorn import JsonErrorWorker, gunicorn_options
from sagetext.serving.settings import ServerSettings, env_var


def test_defaults_come_from_the_spec():
    settings = ServerSettings.from_env({})
    spec = specs.load("serving")["settings"]
    assert settings.port == spec["port"]["default"] == 8080
    assert settings.timeout == spec["timeout"]["default"]
    assert settings.max_payload_mb == spec["max_payload_mb"]["default"]
    assert settings.max_payload_bytes == int(spec["max_payload_mb"]["default"] * 1024 * 1024)
    assert settings.workers == cpu_count()  # default 0 = one per CPU
    assert settings.max_concurrent_transforms == settings.workers
    assert settings.default_accept == "" and settings.batch_strategy == "MULTI_RECORD"
    assert settings.max_instances_per_request == spec["max_instances_per_request"]["default"] == 100_000


def test_an_algorithm_may_have_its_own_default():
    entry = specs.load("serving")["settings"]["max_instances_per_request"]
    own = entry["algorithm_defaults"]
    assert set(own) <= set(algorithms.MODULES)
    assert ServerSettings.from_env({}, algorithm="seq2seq").max_instances_per_request == own["seq2seq"] == 100
    for name in set(algorithms.MODULES) - set(own):
        assert ServerSettings.from_env({}, algorithm=name).max_instances_per_request == entry["default"]
    # The environment variable, when set, wins for every algorithm.
    env = {"SAGETEXT_MAX_INSTANCES_PER_REQUEST": "5000"}
    assert {ServerSettings.from_env(env, algorithm=name).max_instances_per_request
            for name in algorithms.MODULES} == {5000}
    assert env_var("max_instances_per_request") == "SAGETEXT_MAX_INSTANCES_PER_REQUEST"


def test_what_each_algorithm_advertises_to_a_batch_transform_job():
    for name in algorithms.MODULES:
        settings = ServerSettings.from_env({}, algorithm=name)
        assert settings.transform_payload_mb == 1
        assert settings.batch_strategy == ("SINGLE_RECORD" if name == "seq2seq" else "MULTI_RECORD")
    # 1 MB of the smallest JSON Lines record BlazingText takes stays within its instance cap
    blazingtext = ServerSettings.from_env({}, algorithm="blazingtext")
    assert blazingtext.transform_payload_mb * 1024 * 1024 // len(b'{"source":""}\n') \
        <= blazingtext.max_instances_per_request
    # never more than the server accepts; whole MB; the job's own strategy wins
    assert ServerSettings.from_env({"SAGETEXT_BATCH_PAYLOAD_IN_MB": "4"}).transform_payload_mb == 4
    assert ServerSettings.from_env({"SAGETEXT_BATCH_PAYLOAD_IN_MB": "8",
                                    "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6.5"}).transform_payload_mb == 6
    assert ServerSettings.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.5"}).transform_payload_mb == 1
    assert ServerSettings.from_env({"SAGEMAKER_BATCH_STRATEGY": "multi_record"},
                                   algorithm="seq2seq").batch_strategy == "MULTI_RECORD"
    assert env_var("batch_payload_mb") == "SAGETEXT_BATCH_PAYLOAD_IN_MB"


def test_environment_overrides_by_the_names_sagemaker_uses():
    settings = ServerSettings.from_env({
        "SAGEMAKER_BIND_TO_PORT": "9090",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": " 120 ",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.5",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "Application/JSON-Lines; charset=utf-8",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "",  # blank = default
        "SAGEMAKER_BATCH_STRATEGY": "single_record",
    })
    assert (settings.port, settings.workers, settings.timeout) == (9090, 3, 120)
    assert settings.max_payload_bytes == 524288
    assert settings.default_accept == "application/jsonlines"
    assert settings.max_concurrent_transforms == 3
    assert settings.batch_strategy == "SINGLE_RECORD"
    assert env_var("port") == "SAGEMAKER_BIND_TO_PORT"


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ClientError) as raised:
        ServerSettings.from_env({
            "SAGEMAKER_BIND_TO_PORT": "70000",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "1.5",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "-1",
            "SAGEMAKER_BATCH_STRATEGY": "ALL_AT_ONCE",
            "SAGETEXT_MAX_INSTANCES_PER_REQUEST": "0",
            "SAGETEXT_BATCH_PAYLOAD_IN_MB": "101",
        })
    message = raised.value.message
    assert "SAGEMAKER_BIND_TO_PORT=70000: expected a port in [1, 65535]" in message
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT='1.5': expected an integer" in message
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB=-1.0: expected a number of MB > 0" in message
    assert "SAGEMAKER_BATCH_STRATEGY='ALL_AT_ONCE': expected one of MULTI_RECORD, SINGLE_RECORD" in message
    assert "SAGETEXT_MAX_INSTANCES_PER_REQUEST=0: expected an integer >= 1" in message
    assert "SAGETEXT_BATCH_PAYLOAD_IN_MB=101: expected whole MB in [1, 100]" in message


def test_gunicorn_gets_our_settings():
    options = gunicorn_options(ServerSettings.from_env({
        "SAGEMAKER_BIND_TO_PORT": "8081", "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"}))
    assert options["bind"] == "0.0.0.0:8081"
    assert (options["workers"], options["timeout"], options["worker_class"]) == (2, 30, JsonErrorWorker)
    assert options["preload_app"] is False
