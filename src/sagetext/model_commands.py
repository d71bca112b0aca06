"""``sagetext serve``, ``predict`` and ``test``: the commands that run on a trained model.

Each takes ``--model-dir`` or ``--model-data`` (a model.tar.gz, local or s3://) and, without
``--algorithm``, finds the algorithm from the model folder (``algorithms.detect``). A
``ClientError`` is one line on stderr and exit status 1. ``predict`` answers a file's
instances through the server's own code (``serving.batch``); ``test`` scores the model with
``sagetext.evaluate``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagetext import algorithms, model_archive, s3
from sagetext.errors import ClientError

if TYPE_CHECKING:
    from sagetext.algorithms.base import Predictor


def serve(args: argparse.Namespace) -> int:
    """``sagetext serve``: the image's server on a model folder or model.tar.gz."""
    from sagetext.serving.gunicorn import serve

    scratch = None
    try:
        model_dir = args.model_dir
        if args.model_data is not None:
            scratch = Path(tempfile.mkdtemp(prefix="sagetext-serve-"))
            model_dir = _unpack_model_data(args.model_data, args.s3_endpoint_url, scratch)
        serve(args.algorithm, model_dir, args.port)
    except ClientError as exc:
        print(f"sagetext serve: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _with_model(command: str, args: argparse.Namespace, work: Any) -> int:
    """Run ``work(algorithm, model_dir)`` on the model of --model-dir or --model-data; a
    ClientError is one line on stderr and exit status 1."""
    scratch = None
    try:
        model_dir = args.model_dir
        if args.model_data is not None:
            scratch = Path(tempfile.mkdtemp(prefix=f"sagetext-{command}-"))
            model_dir = _unpack_model_data(args.model_data, args.s3_endpoint_url, scratch)
        return int(work(args.algorithm or algorithms.detect(model_dir), model_dir))
    except ClientError as exc:
        print(f"sagetext {command}: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _load(algorithm: str, model_dir: Path) -> "Predictor":
    return algorithms.get(algorithm).load(model_dir)


def predict(args: argparse.Namespace, configuration: dict[str, Any]) -> int:
    """``sagetext predict``: a file's instances answered as ``/invocations`` answers them."""
    from sagetext.serving import batch
    from sagetext.serving.settings import ServerSettings

    if args.batch_size is not None and args.batch_size < 1:
        raise SystemExit(f"sagetext predict: --batch-size {args.batch_size}: expected a positive integer")

    def work(algorithm: str, model_dir: Path) -> int:
        predictor = _load(algorithm, model_dir)
        size = args.batch_size or min(ServerSettings.from_env(algorithm=algorithm).max_instances_per_request, 1000)
        with _open(args.input, "rb") as source, _open(args.output, "wb") as sink:
            summary = batch.predict_stream(predictor, source, sink, args.content_type, args.accept, configuration,
                                           size, args.input)
        print(f"sagetext predict: {summary.instances:,} instances in {summary.requests:,} requests, "
              f"{summary.seconds:.1f} s", file=sys.stderr)
        return 0

    return _with_model("predict", args, work)


def test(args: argparse.Namespace) -> int:
    """``sagetext test``: fastText's P@k/R@k, sacreBLEU, or NTM's perplexity, TU and NPMI."""
    from sagetext import evaluate

    def work(algorithm: str, model_dir: Path) -> int:
        if algorithm == "ntm":
            print(evaluate.topic_scores(model_dir, args.input, args.seed).report())
        elif algorithm == "seq2seq":
            if args.reference is None:
                raise ClientError("a Seq2Seq model is scored against --reference FILE (one translation a line)")
            print(evaluate.bleu(_load(algorithm, model_dir), args.input, args.reference, args.tokenize,
                                args.translations).report())
        else:
            print(evaluate.precision_recall(_load(algorithm, model_dir), args.input, args.k).report())
        return 0

    return _with_model("test", args, work)


def _open(name: str, mode: str) -> Any:
    """A file, or standard input/output for ``-``."""
    if name == "-":
        stream = sys.stdin.buffer if "r" in mode else sys.stdout.buffer
        return open(stream.fileno(), mode, closefd=False)
    try:
        return open(name, mode)
    except OSError as exc:
        raise ClientError(f"{name}: {exc.strerror}") from None


def _unpack_model_data(model_data: str, endpoint_url: str | None, scratch: Path) -> Path:
    """``model_data`` (a model.tar.gz, local or s3://) unpacked safely into ``scratch/model``."""
    archive = Path(model_data)
    if s3.is_s3_uri(model_data):
        archive = s3.S3(endpoint_url).download_file(model_data, scratch / model_archive.ARCHIVE_NAME)
    elif not archive.is_file():
        raise ClientError(f"--model-data {model_data}: no such file; expected a model.tar.gz or s3://bucket/key")
    return model_archive.unpack(archive, scratch / "model")
