from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagetext import algorithms, specs
from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.contract.hyperparameters import Spec, parse, view_mismatches
from sagetext.errors import ClientError

SPEC = Spec.load("blazingtext")


def test_strings_from_the_sdk_are_typed_and_defaults_come_from_the_spec() -> None:
    hp = parse({"mode": "supervised", "epochs": "10", "learning_rate": "1e-05", "early_stopping": "True",
                "sagemaker_region": "us-east-1", "_tuning_objective_metric": "validation:accuracy"}, SPEC)
    assert hp["epochs"] == 10 and isinstance(hp["epochs"], int)
    assert hp["learning_rate"] == pytest.approx(1e-5)
    assert hp["early_stopping"] is True
    defaults = specs.load("blazingtext")["hyperparameters"]
    assert hp["vector_dim"] == defaults["vector_dim"]["default"]
    assert hp.given == {"mode", "epochs", "learning_rate", "early_stopping"}
    assert "sagemaker_region" not in hp


@pytest.mark.parametrize("text,expected", [("true", True), ("FALSE", False), ("1", True), ("0", False),
                                           ("True", True)])
def test_booleans_in_any_case(text: str, expected: bool) -> None:
    assert parse({"mode": "cbow", "subwords": text}, SPEC)["subwords"] is expected


def test_every_problem_is_reported_at_once_naming_field_value_and_range() -> None:
    with pytest.raises(ClientError) as err:
        parse({"mode": "supervised", "epochs": "ten", "vector_dim": "0", "learning_rate": "-1",
               "early_stopping": "maybe", "bogus_key": "1"}, SPEC)
    message = err.value.message
    assert "epochs='ten': expected an integer >= 1" in message
    assert "vector_dim='0': expected an integer >= 1" in message
    assert "learning_rate='-1': expected a number > 0.0" in message
    assert "early_stopping='maybe': expected true or false" in message
    assert "bogus_key: unknown hyperparameter" in message


def test_missing_required_key_and_bad_enum() -> None:
    with pytest.raises(ClientError, match="mode: required hyperparameter is missing"):
        parse({"epochs": "3"}, SPEC)
    with pytest.raises(ClientError, match="mode='word2vec': expected one of supervised, cbow"):
        parse({"mode": "word2vec"}, SPEC)


def test_keys_of_another_mode_are_accepted_but_listed_as_unused() -> None:
    hp = parse({"mode": "supervised", "window_size": "3"}, SPEC)
    assert list(hp.unused) == ["window_size"]
    assert hp.unused["window_size"] == "used only in mode cbow, skipgram, batch_skipgram (this job: mode=supervised)"


SEQ2SEQ = Spec.load("seq2seq")
ARCHITECTURE_SETTINGS = {"rnn_num_hidden": "64", "rnn_attention_type": "dot", "cnn_num_hidden": "64",
                         "cnn_kernel_width_encoder": "3", "cnn_kernel_width_decoder": "3",
                         "transformer_model_size": "64", "num_embed_source": "32", "weight_init_scale": "2"}


@pytest.mark.parametrize("encoder,decoder,ignored", [
    ("rnn", "rnn", ["cnn_kernel_width_decoder", "cnn_kernel_width_encoder", "cnn_num_hidden",
                    "transformer_model_size"]),
    ("cnn", "cnn", ["rnn_attention_type", "rnn_num_hidden", "transformer_model_size"]),
    ("rnn", "cnn", ["cnn_kernel_width_encoder", "rnn_attention_type", "transformer_model_size"]),
    ("cnn", "rnn", ["cnn_kernel_width_decoder", "transformer_model_size"]),
    ("transformer", "transformer", ["cnn_kernel_width_decoder", "cnn_kernel_width_encoder", "cnn_num_hidden",
                                    "num_embed_source", "rnn_attention_type", "rnn_num_hidden",
                                    "weight_init_scale"]),
])
def test_seq2seq_settings_of_another_architecture_are_listed_as_unused(encoder: str, decoder: str,
                                                                        ignored: list[str]) -> None:
    hp = parse({"encoder_type": encoder, "decoder_type": decoder, **ARCHITECTURE_SETTINGS}, SEQ2SEQ)
    assert list(hp.unused) == ignored
    assert set(hp.unused) < hp.given  # only names the user set; defaults are never reported


def test_an_unused_setting_says_which_architectures_read_it_and_what_this_job_has() -> None:
    hp = parse({"encoder_type": "cnn", "decoder_type": "cnn", "rnn_attention_type": "dot"}, SEQ2SEQ)
    assert hp.unused == {"rnn_attention_type": "used only with decoder_type=rnn (this job: decoder_type=cnn)"}
    hp = parse({"encoder_type": "transformer", "decoder_type": "transformer", "rnn_num_hidden": "64"}, SEQ2SEQ)
    assert hp.unused["rnn_num_hidden"] == ("used only with encoder_type=rnn or decoder_type=rnn "
                                           "(this job: encoder_type=transformer, decoder_type=transformer)")


@pytest.mark.parametrize("name", sorted(algorithms.MODULES))
def test_every_used_when_condition_names_an_enum_and_one_of_its_values(name: str) -> None:
    entries = specs.load(name)["hyperparameters"]
    for key, entry in entries.items():
        for condition in entry.get("used_when", []):
            setting, _, value = condition.partition("=")
            assert entries[setting]["type"] == "enum" and value in entries[setting]["values"], (key, condition)


def test_int_lists_nan_and_integral_floats() -> None:
    spec = Spec("test", {"layers": {"type": "int_list", "allow_auto": True, "default": "auto"},
                         "clip": {"type": "float", "default": float("inf"), "min": 1e-3},
                         "n": {"type": "int", "default": 1}})
    assert parse({"layers": "[30, 20]"}, spec)["layers"] == (30, 20)
    assert parse({"layers": "30,20"}, spec)["layers"] == (30, 20)
    assert parse({"layers": "AUTO"}, spec)["layers"] == "auto"
    assert parse({"clip": "Infinity"}, spec)["clip"] == float("inf")
    assert parse({"n": "1000000.0"}, spec)["n"] == 1_000_000
    for bad in ({"layers": "[30, -1]"}, {"layers": "[]"}, {"layers": "{"}, {"clip": "nan"}, {"n": "1.5"}):
        with pytest.raises(ClientError):
            parse(bad, spec)


@pytest.mark.parametrize("algorithm", sorted(algorithms.MODULES))
def test_each_algorithm_typed_view_lists_the_spec_names_and_types(algorithm: str) -> None:
    view = algorithms.get(algorithm).hyperparameter_view
    assert view_mismatches(view, Spec.load(algorithm)) == []
    required = {k: str(entry["values"][0] if entry["type"] == "enum" else entry["min"])
                for k, entry in Spec.load(algorithm).entries.items() if entry.get("required")}
    typed = parse(required, Spec.load(algorithm)).typed(view)
    defaults = {k: entry.get("default") for k, entry in Spec.load(algorithm).entries.items() if k not in required}
    assert {k: getattr(typed, k) for k in defaults} == {k: tuple(v) if isinstance(v, list) else v
                                                        for k, v in defaults.items()}


def test_a_view_that_drifts_from_the_spec_is_named() -> None:
    spec = Spec("test", {"mode": {"type": "enum", "values": ["a", "b"], "required": True},
                         "layers": {"type": "int_list", "allow_auto": True, "default": "auto"},
                         "momentum": {"type": "float"}, "n": {"type": "int", "default": 1}})

    @dataclass(frozen=True)
    class Agrees:
        mode: Literal["b", "a"]
        layers: tuple[int, ...] | Literal["auto"]
        momentum: float | None
        n: int

    @dataclass(frozen=True)
    class Drifts:
        mode: Literal["a", "c"]
        layers: tuple[int, ...]
        momentum: float
        n: int = 1
        extra: str = ""

    assert view_mismatches(Agrees, spec) == []
    problems = "\n".join(view_mismatches(Drifts, spec))
    for name in ("mode", "layers", "momentum", "n", "extra"):
        assert f"{name}:" in problems
    assert "extra: in Drifts, not in the spec" in problems and "n: has a default" in problems
    assert parse({"mode": "A"}, spec).typed(Agrees) == Agrees("a", "auto", None, 1)
    with pytest.raises(TypeError, match="Drifts does not list the test hyperparameters"):
        parse({"mode": "a"}, spec).typed(Drifts)


def test_typed_view_reads_what_the_user_gave() -> None:
    hp = parse({"mode": "supervised", "epochs": "10", "early_stopping": "True"}, SPEC).typed(BlazingTextHyperparameters)
    assert hp.mode == "supervised" and hp.epochs == 10 and hp.early_stopping is True and hp.vector_dim == 100


def test_metric_definitions_match_the_lines_training_prints() -> None:
    import re

    definitions = {d["Name"]: d["Regex"] for d in specs.metric_definitions("blazingtext")}
    line = "[11/04/2024 23:41:49 INFO 140700728170304] #validation_accuracy: 0.9228"
    assert re.search(definitions["validation:accuracy"], line).group(1) == "0.9228"
    assert re.search(definitions["train:mean_rho"], "#mean_rho: 0.7096995514173802").group(1) == "0.7096995514173802"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SPEC.entries) + ["other", "sagemaker_x"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(), st.none(),
                                 st.lists(st.integers(), max_size=3))))
def test_any_input_gives_hyperparameters_or_a_client_error(raw: dict) -> None:
    try:
        hp = parse(raw, SPEC)
    except ClientError as exc:
        assert exc.message.startswith("Invalid hyperparameters: ")
    else:
        assert set(hp) == set(SPEC.entries)


def test_unknown_names_suggest_the_closest_and_list_the_accepted_once() -> None:
    with pytest.raises(ClientError) as error:
        parse({"mode": "supervised", "epoch": "3", "learning_rat": "0.1", "zzz": "1"}, Spec.load("blazingtext"))
    message = error.value.message
    assert "epoch: unknown hyperparameter for blazingtext (did you mean 'epochs'?)" in message
    assert "learning_rat: unknown hyperparameter for blazingtext (did you mean 'learning_rate'?)" in message
    assert "zzz: unknown hyperparameter for blazingtext;" in message or message.count("zzz") == 1
    assert message.count("Accepted names: ") == 1 and message.count("window_size") == 1
