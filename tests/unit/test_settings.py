"""Training settings: read once from the environment, every bad value named at once, carried to
launched workers as JSON, and README's table of them kept true."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sagetext.contract import settings
from sagetext.contract.settings import VARIABLES, Settings, env_var
from sagetext.errors import ClientError
from tests.conftest import REPO


def test_unset_or_empty_variables_give_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({variable: " " for variable, _ in VARIABLES.values()}) == Settings()
    assert Settings().device is None and Settings().cpu_workers == 1
    assert Settings().word2vec_engine is None and Settings().train_threads is None  # each algorithm's own default


def test_each_variable_sets_its_setting() -> None:
    env = {"SAGETEXT_ALGORITHM": "ntm", "SAGETEXT_DEVICE": " CUDA ", "SAGETEXT_CPU_WORKERS": "3",
           "SAGETEXT_TRAIN_THREADS": "2", "SAGETEXT_WORD2VEC_ENGINE": "torch", "SAGETEXT_MASTER_PORT": "29600",
           "SAGETEXT_PIPE_WAIT_SECONDS": "2.5", "TRAINING_JOB_NAME": "job-7", "SAGETEXT_OTHER": "ignored",
           "SAGETEXT_NTM_DECODER": "free"}
    assert Settings.from_env(env) == Settings(algorithm="ntm", device="cuda", cpu_workers=3, train_threads=2,
                                              word2vec_engine="torch", master_port=29600, pipe_wait_seconds=2.5,
                                              job_name="job-7", ntm_decoder="free")
    assert Settings.from_env({"SAGETEXT_DEVICE": "cuda:1"}).device == "cuda:1"


def test_every_bad_value_is_reported_at_once_with_what_is_accepted() -> None:
    env = {"SAGETEXT_CPU_WORKERS": "two", "SAGETEXT_DEVICE": "tpu", "SAGETEXT_TRAIN_THREADS": "0",
           "SAGETEXT_WORD2VEC_ENGINE": "tf", "SAGETEXT_MASTER_PORT": "70000", "SAGETEXT_PIPE_WAIT_SECONDS": "nan"}
    with pytest.raises(ClientError) as err:
        Settings.from_env(env)
    message = err.value.message
    assert message.startswith("Invalid settings: ")
    for needle in ("SAGETEXT_CPU_WORKERS='two': expected a positive integer",
                   "SAGETEXT_DEVICE='tpu': expected cpu or cuda",
                   "SAGETEXT_TRAIN_THREADS='0': expected a positive integer",
                   "SAGETEXT_WORD2VEC_ENGINE='tf': expected one of native, gensim, torch",
                   "SAGETEXT_MASTER_PORT='70000': expected a port in [1, 65535]",
                   "SAGETEXT_PIPE_WAIT_SECONDS='nan': expected a number of seconds >= 0"):
        assert needle in message


def test_json_carries_every_setting_to_the_workers() -> None:
    chosen = Settings(algorithm="seq2seq", device="cpu", cpu_workers=2, train_threads=4, word2vec_engine="torch",
                      master_port=1234, pipe_wait_seconds=0.5, job_name="j")
    assert Settings.from_json(chosen.to_json()) == chosen
    assert Settings.from_json(Settings().to_json()) == Settings()


def test_one_setting_alone_ignores_the_others() -> None:
    assert settings.read("device", {"SAGETEXT_DEVICE": "CPU", "SAGETEXT_CPU_WORKERS": "bad"}) == "cpu"
    assert settings.read("device", {}) is None
    with pytest.raises(ClientError, match="SAGETEXT_DEVICE='gpu'"):
        settings.read("device", {"SAGETEXT_DEVICE": "gpu"})


def test_every_setting_has_its_variable_and_readme_names_each() -> None:
    assert set(VARIABLES) == {f.name for f in dataclasses.fields(Settings)}
    readme = (REPO / "README.md").read_text("utf-8")
    table = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    for name in VARIABLES:
        assert env_var(name) in table, f"README's settings table lacks {env_var(name)}"
