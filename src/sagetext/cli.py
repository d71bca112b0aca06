"""``sagetext``: run the containers' jobs from a shell, outside SageMaker.

``sagetext train`` runs exactly what the image's ``train`` runs, in a temporary contract root
(the /opt/ml of a container) laid out from its arguments (``local_training``); ``sagetext serve``
starts the same server as the image's ``serve``. Outside SageMaker, channels may be
``s3://`` prefixes and the model may go to S3 as ``model.tar.gz`` (see ``sagetext.s3``), and
``serve --model-data`` serves a ``model.tar.gz`` from a file or S3. ``sagetext predict``
and ``sagetext test`` answer and score a file with a trained model (``model_commands``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sagetext import __version__, algorithms, local_training, model_commands, s3, specs
from sagetext.errors import ClientError

if TYPE_CHECKING:
    from sagetext.algorithms.blazingtext.fasttext_format.quantize import Retrain

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C outside training (which stops on its own, exit 130)
        print("sagetext: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagetext", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sagetext {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    _train_command(sub)
    _serve_command(sub)
    _model_commands(sub)
    _sagemaker_commands(sub)
    _data_commands(sub)
    return parser


def _train_command(sub: Subparsers) -> None:
    train = sub.add_parser("train", help="train a model as the container would")
    train.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    train.add_argument("--channel", action="append", default=[], metavar="NAME=PATH",
                       help="a data channel: a file, a folder, or s3://bucket/prefix (repeatable)")
    train.add_argument("--hyperparameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                       help="a hyperparameter, as SageMaker would pass it (repeatable)")
    train.add_argument("--model-dir", type=Path, help="where the model files go (default: a temporary "
                       "folder; then give --output or --output-dir)")
    train.add_argument("--output", metavar="s3://BUCKET/PREFIX",
                       help="upload model.tar.gz to PREFIX/JOB_NAME/output/model.tar.gz, as SageMaker does")
    train.add_argument("--output-dir", type=Path, help="write model.tar.gz into this folder")
    train.add_argument("--job-name", help="names the --output folder (default: sagetext-ALGORITHM-TIMESTAMP)")
    train.add_argument("--s3-endpoint-url", help="an S3-compatible store (default: $SAGETEXT_S3_ENDPOINT_URL "
                       "or $AWS_ENDPOINT_URL, else AWS)")
    train.add_argument("--checkpoint-dir", type=Path, help="save and resume checkpoints here")
    train.add_argument("--input-mode", default="File", choices=["File", "Pipe"],
                       help=argparse.SUPPRESS)
    train.add_argument("--workers", type=int, help="CPU worker processes (GPUs: one per GPU)")
    train.add_argument("--tensorboard", type=Path, metavar="DIR", help="write TensorBoard event files here, as "
                       "a SageMaker job with a TensorBoardOutputConfig does (needs sagetext[tensorboard])")
    train.set_defaults(run=_train)


def _serve_command(sub: Subparsers) -> None:
    serve = sub.add_parser("serve", help="serve a model as the container would")
    model = serve.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-dir", type=Path, help="a folder of model files (what training wrote)")
    model.add_argument("--model-data", metavar="PATH_OR_S3_URI",
                       help="a model.tar.gz, local or s3://; unpacked safely into a temporary folder")
    serve.add_argument("--s3-endpoint-url", help="an S3-compatible store for --model-data s3://...")
    serve.add_argument("--algorithm", choices=sorted(algorithms.MODULES),
                       default=os.environ.get(algorithms.ALGORITHM_ENV) or None,
                       help="default: $SAGETEXT_ALGORITHM, else the one whose model the folder holds")
    serve.add_argument("--port", type=int, help="default: $SAGEMAKER_BIND_TO_PORT or 8080")
    serve.set_defaults(run=model_commands.serve)


def _model_commands(sub: Subparsers) -> None:
    """predict, test and neighbors: use a trained model from the shell."""
    predict = sub.add_parser("predict", help="answer every instance of a file as the server would")
    _model_arguments(predict)
    predict.add_argument("--input", default="-", metavar="FILE", help="default: standard input")
    predict.add_argument("--output", default="-", metavar="FILE", help="default: standard output")
    predict.add_argument("--content-type", metavar="TYPE", help="the input's type: application/jsonlines (the "
                         "default when the model takes it), application/json, text/csv, "
                         "application/x-recordio-protobuf, or text/plain (a sentence a line)")
    predict.add_argument("--accept", metavar="TYPE", help="the answers' type, as the Accept header")
    predict.add_argument("-c", "--configuration", action="append", default=[], metavar="KEY=VALUE",
                         help="added to each request: JSON's \"configuration\" object or each JSON Lines object "
                         "(e.g. k=3, attention_matrix=true); repeatable")
    predict.add_argument("--batch-size", type=int, metavar="N",
                         help="instances per request (default: the server's cap, at most 1000)")
    predict.set_defaults(run=_predict)

    test = sub.add_parser("test", help="score a model on held-out data: P@k/R@k (supervised, as fastText), "
                          "BLEU (Seq2Seq, sacreBLEU), perplexity/TU/NPMI (NTM)")
    _model_arguments(test)
    test.add_argument("--input", required=True, type=Path, metavar="PATH", help="a __label__ file (supervised), "
                      "a source file (Seq2Seq), or held-out documents, a file or folder (NTM)")
    test.add_argument("-k", type=int, default=1, help="supervised: labels predicted per line (default: 1)")
    test.add_argument("--reference", type=Path, metavar="FILE", help="Seq2Seq: the reference translations")
    test.add_argument("--translations", type=Path, metavar="FILE", help="Seq2Seq: also write the translations here")
    test.add_argument("--tokenize", default="13a", help="Seq2Seq: sacreBLEU's tokenizer (default: 13a)")
    test.add_argument("--seed", type=int, help="NTM: the seed of the posterior sample (default: the spec's)")
    test.set_defaults(run=model_commands.test)

    near = sub.add_parser("neighbors", help="nearest words and analogies (king - man + woman) in trained word vectors")
    near.add_argument("--model-dir", type=Path, required=True,
                      help="a word2vec model folder (vectors.bin, or a fastText word-vector model.bin)")
    near.add_argument("--neighbors", "-k", type=int, default=10, metavar="N", help="words to show per query (10)")
    near.add_argument("queries", nargs="+", metavar="QUERY",
                      help="a word, or words joined by + and - (king - man + woman); several queries in a row")
    near.set_defaults(run=_neighbors)


def _sagemaker_commands(sub: Subparsers) -> None:
    """What a SageMaker user needs beside the image: metric definitions, the algorithm spec and
    the hyperparameter table."""
    metrics = sub.add_parser("metric-definitions", help="print the MetricDefinitions for an Estimator")
    metrics.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    metrics.set_defaults(run=lambda a: print(json.dumps(specs.metric_definitions(a.algorithm), indent=2)) or 0)

    spec = sub.add_parser("algorithm-spec", help="print the CreateAlgorithm request that registers an image as a "
                          "SageMaker algorithm (hyperparameters, metrics, channels; no metric_definitions needed)")
    spec.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    spec.add_argument("--image", required=True, metavar="URI", help="the image in ECR (training and inference)")
    spec.add_argument("--name", help="AlgorithmName (default: sagetext-ALGORITHM)")
    spec.set_defaults(run=_algorithm_spec)

    table = sub.add_parser("hyperparameters", help="print an algorithm's hyperparameters as a Markdown table")
    table.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    table.set_defaults(run=lambda a: print(hyperparameter_table(a.algorithm)) or 0)


def _data_commands(sub: Subparsers) -> None:
    """Data and model file tools: the Seq2Seq and NTM preparation commands and quantize."""
    prepare = sub.add_parser("seq2seq-prepare", help="parallel text -> train.rec, val.rec and vocab JSON "
                             "(SageMaker's create_vocab_proto.py)")
    _seq2seq_prepare().add_arguments(prepare)
    prepare.set_defaults(run=lambda a: run_preparation("seq2seq-prepare", _seq2seq_prepare().run, a))

    ntm = sub.add_parser("ntm-prepare", help="text documents -> vocab.txt and sparse RecordIO train/validation/test "
                         "channels for NTM")
    _ntm_prepare().add_arguments(ntm)
    ntm.set_defaults(run=lambda a: run_preparation("ntm-prepare", _ntm_prepare().run, a))

    quantize = sub.add_parser("quantize", help="compress a BlazingText supervised model.bin into fastText's .ftz "
                              "(what `fasttext quantize` does)")
    quantize.add_argument("--model-dir", type=Path, required=True, help="the folder holding model.bin")
    quantize.add_argument("--output", type=Path, help="the .ftz to write (default: MODEL_DIR/model.ftz)")
    quantize.add_argument("--cutoff", type=int, default=0,
                          help="keep only this many input rows (words and n-grams of largest norm); 0: all")
    quantize.add_argument("--qnorm", action="store_true", help="quantize each row's norm apart")
    quantize.add_argument("--qout", action="store_true", help="quantize the output (label) matrix too")
    quantize.add_argument("--dsub", type=int, default=2, help="dimensions per sub-quantizer (fastText's default 2)")
    quantize.add_argument("--retrain", action="store_true",
                          help="after --cutoff, train the kept rows again on --input (fastText's -retrain)")
    quantize.add_argument("--input", type=Path, help="with --retrain: the training file (fastText format)")
    quantize.add_argument("--epochs", type=int, help="with --retrain: passes over --input (default: the model's)")
    quantize.add_argument("--learning-rate", type=float, default=0.05,
                          help="with --retrain: the starting rate (fastText's default 0.05)")
    quantize.set_defaults(run=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    from sagetext.algorithms.blazingtext.fasttext_format.quantize import quantize_file

    source = args.model_dir / "model.bin"
    target = args.output or args.model_dir / "model.ftz"
    try:
        if not source.is_file():
            raise ClientError(f"no model.bin in {args.model_dir}")
        quantize_file(source, target, cutoff=args.cutoff, dsub=args.dsub, qnorm=args.qnorm, qout=args.qout,
                      retrain=_retrainer(args))
    except ClientError as exc:
        print(f"sagetext quantize: {exc}", file=sys.stderr)
        return 2
    print(f"{target}: {target.stat().st_size:,} bytes (model.bin: {source.stat().st_size:,} bytes); serve it as "
          "model.bin, or load it with fasttext.load_model")
    return 0


def _retrainer(args: argparse.Namespace) -> "Retrain | None":
    """``supervised.retrain`` bound to the command's --input, --epochs and --learning-rate, or None."""
    if not args.retrain:
        return None
    if args.input is None or not args.input.is_file():
        raise ClientError(f"--retrain needs --input, the training file (got {args.input})")
    from functools import partial

    from sagetext.algorithms.blazingtext.supervised.retrain import retrain

    return partial(retrain, train_file=args.input, epochs=args.epochs, lr=args.learning_rate)


def _algorithm_spec(args: argparse.Namespace) -> int:
    """Print the request body, checked against botocore's SageMaker service model when botocore is installed."""
    from sagetext import algorithm_spec

    body = algorithm_spec.request_body(args.algorithm, args.image, args.name)
    try:
        algorithm_spec.validate(body)
    except ImportError:
        print("sagetext algorithm-spec: botocore is not installed (pip install boto3); the request was not "
              "checked against SageMaker's service model", file=sys.stderr)
    except ClientError as exc:
        print(f"sagetext algorithm-spec: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


def _seq2seq_prepare():  # noqa: ANN202 - a module
    from sagetext.algorithms.seq2seq import prepare

    return prepare


def _ntm_prepare():  # noqa: ANN202 - a module
    from sagetext.algorithms.ntm import prepare

    return prepare


def run_preparation(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """A data-preparation command: its progress lines on stderr, a user's mistake as one line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return run(args)
    except ClientError as exc:
        print(f"sagetext {command}: {exc.message}", file=sys.stderr)
        return 2


def hyperparameter_table(algorithm: str) -> str:
    """The spec in configs/ as documentation: name, type, default, where it is read (modes or
    used_when), meaning."""
    rows = ["| name | type | default | used in | meaning |", "|---|---|---|---|---|"]
    for name, entry in specs.load(algorithm)["hyperparameters"].items():
        default = "**required**" if entry.get("required") else f"`{entry.get('default', '')}`"
        kind = entry["type"] if entry["type"] != "enum" else " / ".join(entry["values"])
        used = ", ".join(entry.get("modes", [])) or " or ".join(entry.get("used_when", [])) or "all"
        rows.append(f"| `{name}` | {kind} | {default} | {used} | {entry.get('doc', '')} |")
    return "\n".join(rows)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-dir", type=Path, help="a folder of model files (what training wrote)")
    model.add_argument("--model-data", metavar="PATH_OR_S3_URI", help="a model.tar.gz, local or s3://")
    parser.add_argument("--s3-endpoint-url", help="an S3-compatible store for --model-data s3://...")
    parser.add_argument("--algorithm", choices=sorted(algorithms.MODULES),
                        help="default: the one whose model the folder holds")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE arguments; a name given twice is an error, not last-wins."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"sagetext: {what} {item!r}: expected NAME=VALUE")
        if name in result:
            raise SystemExit(f"sagetext: {what} {name} is given twice ({result[name]!r} and {value!r}); give it once")
        result[name] = value
    return result


def _train(args: argparse.Namespace) -> int:
    if args.model_dir is None and args.output is None and args.output_dir is None:
        raise SystemExit("sagetext train: give --model-dir, --output s3://BUCKET/PREFIX or --output-dir DIR")
    if args.output is not None and not s3.is_s3_uri(args.output):
        raise SystemExit(f"sagetext train: --output {args.output!r}: expected s3://bucket/prefix "
                         "(for a local folder use --output-dir)")
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"sagetext train: --workers {args.workers}: expected a positive integer")
    sources = _pairs(args.channel, "--channel")
    for name, value in sources.items():
        if not s3.is_s3_uri(value) and not Path(value).exists():
            raise SystemExit(f"sagetext: channel {name}: {value} does not exist")
    if args.tensorboard is not None:
        from sagetext.contract import tensorboard

        if not tensorboard.available():
            raise SystemExit(f"sagetext train: --tensorboard needs the tensorboard package "
                             f"({tensorboard.INSTALL_HINT})")
    job_name = args.job_name or f"sagetext-{args.algorithm}-{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime())}"
    job = local_training.LocalJob(
        algorithm=args.algorithm, job_name=job_name, channels=sources,
        hyperparameters=_pairs(args.hyperparameter, "--hyperparameter"), model_dir=args.model_dir,
        output=args.output, output_dir=args.output_dir, s3_endpoint_url=args.s3_endpoint_url,
        checkpoint_dir=args.checkpoint_dir, tensorboard_dir=args.tensorboard, workers=args.workers)
    try:
        return local_training.run(job)
    except ClientError as exc:
        print(f"sagetext train: {exc.message}", file=sys.stderr)
        return 1


def _predict(args: argparse.Namespace) -> int:
    configuration = {key: _json_value(value) for key, value in _pairs(args.configuration, "-c").items()}
    return model_commands.predict(args, configuration)


def _neighbors(args: argparse.Namespace) -> int:
    from sagetext.algorithms.blazingtext.word2vec import neighbors

    if not 1 <= args.neighbors <= neighbors.MAX_NEIGHBORS:
        raise SystemExit(f"sagetext neighbors: --neighbors {args.neighbors}: expected 1 to {neighbors.MAX_NEIGHBORS}")
    try:
        return neighbors.print_neighbors(args.model_dir, args.queries, args.neighbors)
    except ClientError as exc:
        print(f"sagetext neighbors: {exc.message}", file=sys.stderr)
        return 1


def _json_value(text: str) -> Any:
    """``3`` -> 3, ``true`` -> True, anything that is not JSON stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text
