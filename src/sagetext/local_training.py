"""A SageMaker training job run on this machine (``sagetext train``).

Lays out a temporary contract root, the /opt/ml of a container, from the user's channels
(local files or folders, linked; ``s3://`` prefixes, downloaded) and hyperparameters, runs
exactly what the image's ``train`` runs, and saves the model where the user asked: a model
folder, and/or ``model.tar.gz`` in a local folder or uploaded to S3 as SageMaker does. Log lines
name the user's own paths, not the temporary ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from sagetext import model_archive, s3
from sagetext.contract.metrics import configure_logging
from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings


@dataclasses.dataclass(frozen=True)
class LocalJob:
    """What ``sagetext train`` was given (checked by the command line)."""

    algorithm: str
    job_name: str
    channels: dict[str, str]  # channel name -> a local path or an s3:// prefix
    hyperparameters: dict[str, str]
    model_dir: Path | None  # None: a temporary folder (then output or output_dir is set)
    output: str | None  # s3://bucket/prefix for model.tar.gz
    output_dir: Path | None  # a local folder for model.tar.gz
    s3_endpoint_url: str | None = None
    checkpoint_dir: Path | None = None
    tensorboard_dir: Path | None = None
    workers: int | None = None


def run(job: LocalJob) -> int:
    """Train as the container would; the exit status of training (0 when the model is saved)."""
    from sagetext import training

    store = s3.S3(job.s3_endpoint_url)
    root = Path(tempfile.mkdtemp(prefix="sagetext-job-"))
    try:
        channels = {name: _channel_source(store, name, value, root) for name, value in job.channels.items()}
        model_dir = job.model_dir if job.model_dir is not None else root / "model-files"
        paths = layout(root, channels, job.hyperparameters, model_dir, job.checkpoint_dir, job.tensorboard_dir)
        settings = dataclasses.replace(Settings.from_env(), algorithm=job.algorithm, job_name=job.job_name)
        if job.workers is not None:
            settings = dataclasses.replace(settings, cpu_workers=job.workers)
        user_paths = _user_paths(paths, channels, model_dir)
        configure_logging()
        handlers = [h for h in logging.getLogger("sagetext").handlers if getattr(h, "_sagetext", False)]
        for handler in handlers:  # training logs its failure once; it names the user's paths
            handler.addFilter(user_paths)
        try:
            code = training.main(paths, settings)
        finally:
            for handler in handlers:
                handler.removeFilter(user_paths)
        if code != 0:
            return code
        _save_model(store, model_dir, job.output, job.output_dir, job.job_name, root)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def layout(root: Path, channels: dict[str, Path], hyperparameters: dict[str, str],
           model_dir: Path, checkpoint_dir: Path | None = None, tensorboard_dir: Path | None = None) -> Paths:
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
    if tensorboard_dir is not None:
        paths.tensorboard_config_file.write_text(json.dumps({"LocalPath": str(tensorboard_dir.resolve())}))
    return paths


class _UserPaths(logging.Filter):
    """Log records with the temporary contract root's paths replaced by the user's own (the
    files and folders given to ``sagetext train``), so messages name what the user knows."""

    def __init__(self, replacements: dict[str, str]) -> None:
        super().__init__()
        self.replacements = sorted(replacements.items(), key=lambda item: -len(item[0]))  # longest first

    def rewrite(self, text: str) -> str:
        for temporary, own in self.replacements:
            text = text.replace(temporary, own)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        rewritten = self.rewrite(message)
        if rewritten != message:
            record.msg, record.args = rewritten, ()
        return True


def _user_paths(paths: Paths, channels: dict[str, Path], model_dir: Path) -> _UserPaths:
    replacements = {str(paths.model_dir): str(model_dir)}
    for name, source in channels.items():
        folder = paths.channel_dir(name)
        if source.is_dir():
            replacements[str(folder)] = str(source)
        else:
            replacements[str(folder / source.name)] = str(source)
            replacements[str(folder)] = str(source.parent)
    return _UserPaths(replacements)


def _channel_source(store: s3.S3, name: str, value: str, root: Path) -> Path:
    """A local channel path as given, or an s3:// prefix downloaded under ``root``."""
    if not s3.is_s3_uri(value):
        return Path(value)
    target = root / "s3-channels" / name
    files = store.download_prefix(value, target)
    print(f"sagetext: channel {name}: {len(files)} objects from {value}", file=sys.stderr)
    return target


def _save_model(store: s3.S3, model_dir: Path, output: str | None, output_dir: Path | None,
                job_name: str, root: Path) -> None:
    """model.tar.gz from ``model_dir`` into ``output_dir`` and/or to ``output``, as SageMaker
    uploads it (``<output>/<job_name>/output/model.tar.gz``)."""
    if output is None and output_dir is None:
        return
    archive = model_archive.pack(model_dir, (output_dir or root) / model_archive.ARCHIVE_NAME)
    if output_dir is not None:
        print(f"sagetext: wrote {archive}", file=sys.stderr)
    if output is not None:
        uri = str(s3.S3Uri.parse(output).join(job_name, "output", model_archive.ARCHIVE_NAME))
        store.upload_file(archive, uri)
        print(f"sagetext: uploaded {uri}", file=sys.stderr)
