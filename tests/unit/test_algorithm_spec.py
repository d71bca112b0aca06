"""``sagetext algorithm-spec``: the CreateAlgorithm request, checked offline with botocore's own
parameter validation against the SageMaker service model, for all three algorithms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sagetext import algorithm_spec, specs
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.errors import ClientError

botocore = pytest.importorskip("botocore")
from botocore.session import get_session  # noqa: E402
from botocore.stub import Stubber  # noqa: E402
from botocore.validate import ParamValidator  # noqa: E402

ALGORITHMS = ["blazingtext", "seq2seq", "ntm"]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagetext-{}:0.1.0"


@pytest.fixture(scope="module")
def create_algorithm() -> object:
    return get_session().get_service_model("sagemaker").operation_model("CreateAlgorithm").input_shape


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_request_passes_botocore_validation_against_the_sagemaker_model(algorithm: str,
                                                                           create_algorithm: object) -> None:
    body = algorithm_spec.request_body(algorithm, IMAGE.format(algorithm))
    report = ParamValidator().validate(body, create_algorithm)
    assert not report.has_errors(), report.generate_report()
    algorithm_spec.validate(body)  # and the enums, maximum sizes and patterns botocore leaves out


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_boto3_client_sends_it_as_is(algorithm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``boto3.client("sagemaker").create_algorithm(**body)`` would send, intercepted."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client = get_session().create_client("sagemaker", region_name="us-east-1")
    body = algorithm_spec.request_body(algorithm, IMAGE.format(algorithm))
    with Stubber(client) as stub:
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:algorithm/sagetext-{algorithm}"
        stub.add_response("create_algorithm", {"AlgorithmArn": arn}, expected_params=body)
        assert client.create_algorithm(**body)["AlgorithmArn"] == arn


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_request_carries_the_spec_in_configs(algorithm: str) -> None:
    spec = specs.load(algorithm)
    training = algorithm_spec.request_body(algorithm, "img")["TrainingSpecification"]
    hyperparameters = {h["Name"]: h for h in training["SupportedHyperParameters"]}
    assert list(hyperparameters) == list(spec["hyperparameters"])
    assert training["MetricDefinitions"] == specs.metric_definitions(algorithm)
    assert [c["Name"] for c in training["TrainingChannels"]] == list(spec["channels"])
    objectives = {o["MetricName"]: o["Type"] for o in training["SupportedTuningJobObjectiveMetrics"]}
    assert objectives and set(objectives) <= {m["Name"] for m in training["MetricDefinitions"]}
    for name, entry in spec["hyperparameters"].items():
        given = hyperparameters[name]
        assert given["IsRequired"] == bool(entry.get("required")) and given["IsTunable"] == bool(entry.get("tunable"))
        if given["IsTunable"]:
            assert given["Type"] != "FreeText" and "Range" in given, name  # tuning needs a range
        if "DefaultValue" in given:  # SageMaker may pass a default on: our parser reads it back as the default
            parsed = parse({name: given["DefaultValue"], **_required(spec)}, Spec.load(algorithm))[name]
            assert parsed == (tuple(entry["default"]) if isinstance(entry["default"], list) else entry["default"])


def _required(spec: dict) -> dict[str, str]:
    return {name: str(entry.get("min", entry.get("values", ["1"])[0]))
            for name, entry in spec["hyperparameters"].items() if entry.get("required")}


def test_documented_ranges_and_objectives() -> None:
    """Spot checks against AWS's documentation of the built-ins."""
    def find(algorithm: str, name: str) -> dict:
        body = algorithm_spec.request_body(algorithm, "img")["TrainingSpecification"]
        return next(h for h in body["SupportedHyperParameters"] if h["Name"] == name)

    assert find("ntm", "num_topics")["Range"] == {"IntegerParameterRangeSpecification": {"MinValue": "2",
                                                                                         "MaxValue": "1000"}}
    assert find("ntm", "clip_gradient")["DefaultValue"] == "Infinity"
    assert find("ntm", "encoder_layers")["Type"] == "FreeText"
    assert find("blazingtext", "mode")["IsRequired"] and find("blazingtext", "mode")["IsTunable"]
    rate = find("blazingtext", "learning_rate")["Range"]["ContinuousParameterRangeSpecification"]
    assert float(rate["MinValue"]) > 0 and rate["MaxValue"] == "Infinity"  # learning_rate > 0
    assert find("seq2seq", "optimizer_type")["Range"]["CategoricalParameterRangeSpecification"]["Values"] == [
        "adam", "sgd", "rmsprop"]
    objectives = {algorithm: {o["MetricName"]: o["Type"] for o in algorithm_spec.request_body(algorithm, "img")[
        "TrainingSpecification"]["SupportedTuningJobObjectiveMetrics"]} for algorithm in ALGORITHMS}
    assert objectives == {
        "blazingtext": {"train:mean_rho": "Maximize", "validation:accuracy": "Maximize"},
        "seq2seq": {"validation:bleu": "Maximize", "validation:perplexity": "Minimize",
                    "validation:accuracy": "Maximize"},
        "ntm": {"validation:total_loss": "Minimize"},
    }


def test_inference_types_are_what_the_predictors_answer() -> None:
    """configs/ lists what the predictors declare (``answers``: request type -> response types)."""
    from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor
    from sagetext.algorithms.blazingtext.word2vec.vectors import VectorsPredictor
    from sagetext.algorithms.ntm.predictor import NtmPredictor
    from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor

    for algorithm, predictors in (("blazingtext", (SupervisedPredictor, VectorsPredictor)),
                                  ("seq2seq", (Seq2SeqPredictor,)), ("ntm", (NtmPredictor,))):
        inference = algorithm_spec.request_body(algorithm, "img")["InferenceSpecification"]
        requests = {request for predictor in predictors for request in predictor.answers}
        responses = {response for predictor in predictors for types in predictor.answers.values() for response in types}
        assert set(inference["SupportedContentTypes"]) == requests, algorithm
        assert set(inference["SupportedResponseMIMETypes"]) == responses, algorithm


def test_a_bad_name_is_refused_naming_the_field() -> None:
    with pytest.raises(ClientError, match="AlgorithmName='my_algo': does not match"):
        algorithm_spec.validate(algorithm_spec.request_body("ntm", "img", name="my_algo"))


def test_the_command_prints_the_checked_request() -> None:
    image = IMAGE.format("seq2seq")
    done = subprocess.run([sys.executable, "-m", "sagetext", "algorithm-spec", "--algorithm", "seq2seq",
                           "--image", image, "--name", "nmt"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == algorithm_spec.request_body("seq2seq", image, "nmt")
    bad = subprocess.run([sys.executable, "-m", "sagetext", "algorithm-spec", "--algorithm", "ntm", "--image", image,
                          "--name", "bad.name"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "AlgorithmName='bad.name'" in bad.stderr and not bad.stdout
