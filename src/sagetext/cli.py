"""``sagetext``: run the containers' jobs from a shell, outside SageMaker.

``sagetext train`` lays out a temporary contract root (the /opt/ml of a container) from
command-line arguments and runs exactly what the image's ``train`` runs; ``sagetext serve``
starts the same server as the image's ``serve``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sagetext import algorithms, specs
from sagetext.contract.paths import BASE_DIR_ENV, Paths


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagetext", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model as the container would")
    train.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    train.add_argument("--channel", action="append", default=[], metavar="NAME=PATH",
                       help="a data channel: a file or a folder (repeatable)")
    train.add_argument("--hyperparameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                       help="a hyperparameter, as SageMaker would pass it (repeatable)")
    train.add_argument("--model-dir", required=True, type=Path, help="where the model files go")
    train.add_argument("--checkpoint-dir", type=Path, help="save and resume checkpoints here")
    train.add_argument("--input-mode", default="File", choices=["File", "Pipe"],
                       help=argparse.SUPPRESS)
    train.add_argument("--workers", type=int, help="CPU worker processes (GPUs: one per GPU)")
    train.set_defaults(run=_train)

    serve = sub.add_parser("serve", help="serve a model as the container would")
    serve.add_argument("--model-dir", required=True, type=Path)
    serve.add_argument("--algorithm", choices=sorted(algorithms.MODULES),
                       default=os.environ.get(algorithms.ALGORITHM_ENV, "blazingtext"))
    serve.add_argument("--port", type=int, help="default: $SAGEMAKER_BIND_TO_PORT or 8080")
    serve.set_defaults(run=_serve)

    metrics = sub.add_parser("metric-definitions", help="print the MetricDefinitions for an Estimator")
    metrics.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    metrics.set_defaults(run=lambda a: print(json.dumps(specs.metric_definitions(a.algorithm), indent=2)) or 0)

    prepare = sub.add_parser("seq2seq-prepare", help="parallel text -> train.rec, val.rec and vocab JSON "
                             "(SageMaker's create_vocab_proto.py)")
    _seq2seq_prepare().add_arguments(prepare)
    prepare.set_defaults(run=lambda a: _seq2seq_prepare().run(a))

    table = sub.add_parser("hyperparameters", help="print an algorithm's hyperparameters as a Markdown table")
    table.add_argument("--algorithm", required=True, choices=sorted(algorithms.MODULES))
    table.set_defaults(run=lambda a: print(hyperparameter_table(a.algorithm)) or 0)
    return parser


def _seq2seq_prepare():  # noqa: ANN202 - a module
    from sagetext.algorithms.seq2seq import prepare

    return prepare


def hyperparameter_table(algorithm: str) -> str:
    """The spec in configs/ as documentation: name, type, default, modes, meaning."""
    rows = ["| name | type | default | modes | meaning |", "|---|---|---|---|---|"]
    for name, entry in specs.load(algorithm)["hyperparameters"].items():
        default = "**required**" if entry.get("required") else f"`{entry.get('default', '')}`"
        kind = entry["type"] if entry["type"] != "enum" else " / ".join(entry["values"])
        modes = ", ".join(entry.get("modes", ["all"]))
        rows.append(f"| `{name}` | {kind} | {default} | {modes} | {entry.get('doc', '')} |")
    return "\n".join(rows)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"sagetext: {what} {item!r}: expected NAME=VALUE")
        result[name] = value
    return result


def layout(root: Path, channels: dict[str, Path], hyperparameters: dict[str, str],
           model_dir: Path, checkpoint_dir: Path | None = None) -> Paths:
    """Write a contract root under ``root`` like SageMaker's /opt/ml for these inputs."""
    paths = Paths(root)
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.hyperparameters_file.write_text(json.dumps(hyperparameters, indent=2))
    paths.inputdataconfig_file.write_text(json.dumps(
        {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None"} for name in channels}, indent=2))
    for name, source in channels.items():
        target = paths.channel_dir(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            target.symlink_to(source.resolve(), target_is_directory=True)
        else:
            target.mkdir()
            (target / source.name).symlink_to(source.resolve())
    model_dir.mkdir(parents=True, exist_ok=True)
    paths.model_dir.symlink_to(model_dir.resolve(), target_is_directory=True)
    if checkpoint_dir is not None:
        paths.checkpointconfig_file.write_text(json.dumps({"LocalPath": str(checkpoint_dir.resolve())}))
    return paths


def _train(args: argparse.Namespace) -> int:
    from sagetext import training

    channels = {name: Path(value) for name, value in _pairs(args.channel, "--channel").items()}
    for name, path in channels.items():
        if not path.exists():
            raise SystemExit(f"sagetext: channel {name}: {path} does not exist")
    root = Path(tempfile.mkdtemp(prefix="sagetext-job-"))
    try:
        paths = layout(root, channels, _pairs(args.hyperparameter, "--hyperparameter"),
                       args.model_dir, args.checkpoint_dir)
        os.environ[BASE_DIR_ENV] = str(root)
        os.environ[algorithms.ALGORITHM_ENV] = args.algorithm
        if args.workers:
            os.environ[training.CPU_WORKERS_ENV] = str(args.workers)
        code = training.main()
        if code != 0 and paths.failure_file.exists():
            print(paths.failure_file.read_text("utf-8").splitlines()[0], file=sys.stderr)
        return code
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    from sagetext.errors import ClientError
    from sagetext.serving.gunicorn import serve

    try:
        serve(args.algorithm, args.model_dir, args.port)
    except ClientError as exc:
        print(f"sagetext serve: {exc.message}", file=sys.stderr)
        return 1
    return 0
