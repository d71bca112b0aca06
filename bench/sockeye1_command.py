"""Sockeye 1.x (MXNet) ``sockeye.train`` arguments for sagetext's rnn and cnn recipes (used by
``sockeye_side_by_side.py``).

Sockeye 1.x is the toolkit AWS's Seq2Seq is built on; SageMaker's hyperparameters are its
arguments under other names, so most map one to one. The rule here: every setting sagetext's
hyperparameters fix (the recipe's, else the spec's default) is given to Sockeye; what SageMaker
does not expose stays Sockeye's default. Its own virtual environment, never a project dependency
(MXNet 1.9.1 still uses ``np.bool``/``np.int``, hence numpy<1.24; Sockeye 1.18.106 pins
mxnet-mkl==1.4.1, which has no Python 3.11 wheel, hence ``--no-deps``; nothing is patched):

    python3 -m venv /work/sockeye1-venv
    /work/sockeye1-venv/bin/pip install mxnet==1.9.1 "numpy<1.24"
    /work/sockeye1-venv/bin/pip install --no-deps sockeye==1.18.106
    /work/sockeye1-venv/bin/pip install pyyaml portalocker sacrebleu==1.3.6

Settings with an exact equivalent: layers (``--num-layers``, the rnn encoder's first layer
bidirectional in both), ``rnn_num_hidden``, ``rnn_cell_type``, ``rnn_attention_type`` (and its
hidden size), ``rnn_decoder_state_init``, ``rnn_attention_in_upper_layers``, residual
connections, ``rnn_decoder_hidden_dropout``, embeddings and their dropout, ``cnn_num_hidden``,
kernel widths, ``cnn_activation_type``, learned positional embeddings, batch type and size,
bucket width, optimizer, rate, weight decay, plateau-reduce factor and patience, label
smoothing, value clipping (``--gradient-clipping-type abs``), Xavier initialisation (scale,
factor type), early stopping on validation perplexity, max updates, epochs.

Nearest, not exact:
- ``cnn_hidden_dropout``: sagetext drops before every encoder and decoder convolution and before
  the output layer; Sockeye 1.x's ``--cnn-hidden-dropout`` acts only before the decoder's
  convolutions (its cnn encoder has no dropout but the embeddings').
- The cnn blocks: sagetext follows Gehring et al. (residual sums scaled by sqrt(0.5); each
  decoder block's attention maps its states to the embedding size for the query and the context
  back, with biases; a last map to ``num_embed_target`` before the output layer); Sockeye 1.x
  sums without scaling and attends with plain dot products in the hidden space (no projections:
  ``--cnn-project-qkv`` is off by default and SageMaker does not expose it, and its three bias-free
  projections would not match either). Hence 592,128 fewer parameters in Sockeye's small cnn
  (8,365,834 against 8,957,962: 4 blocks x 2 x (256x256 + 256) + 256x256 + 256); the rnn
  models are within 256 parameters of each other (6,041,866 against 6,042,122).
- ``max_seq_len_*``: sagetext truncates and counts ``</s>`` in the target; Sockeye 1.x drops
  longer pairs and counts without ``</s>``. No Multi30k sentence is near 80 tokens (the longest
  has 45), so it changes nothing here.
- Checkpoints: sagetext checkpoints once more at ``max_num_batches``; Sockeye 1.x only every
  ``--checkpoint-interval`` updates, so the interval is cut to ``max_num_batches`` when it is
  larger (a smoke run), else updates after the last multiple would be trained and not kept.
- Recurrent weights: Sockeye 1.x initialises them orthogonally (its default, not a SageMaker
  hyperparameter); sagetext uses Xavier for every matrix.
- Seed: 1, or the ``seed`` the recipe sets (sagetext's spec default is 0; the two generators
  differ anyway).
"""

from __future__ import annotations

from pathlib import Path

from sagetext.contract.hyperparameters import Hyperparameters, Spec, parse


def sockeye1_train_command(python: str, files: dict[str, Path], folder: Path, source: str, target: str,
                           raw: dict[str, str], output: Path, arch: str) -> list[str]:
    """Sockeye 1.x's ``sockeye.train`` (``--use-cpu``) with the settings ``raw`` gives sagetext."""
    hp = parse(raw, Spec.load("seq2seq"))  # the spec's defaults for what the recipe leaves out
    return [python, "-m", "sockeye.train", "--use-cpu", "--overwrite-output", "--output", str(output),
            "--source", str(files[f"train.{source}"]), "--target", str(files[f"train.{target}"]),
            "--validation-source", str(files[f"val.{source}"]), "--validation-target", str(files[f"val.{target}"]),
            "--source-vocab", str(folder / "vocab.src.json"), "--target-vocab", str(folder / "vocab.trg.json"),
            "--encoder", arch, "--decoder", arch,
            "--num-layers", f"{hp['num_layers_encoder']}:{hp['num_layers_decoder']}",
            "--num-embed", f"{hp['num_embed_source']}:{hp['num_embed_target']}",
            "--embed-dropout", f"{hp['embed_dropout_source']}:{hp['embed_dropout_target']}",
            *(rnn_arguments(hp) if arch == "rnn" else cnn_arguments(hp)),
            *training_arguments(hp), "--seed", raw.get("seed", "1")]


def rnn_arguments(hp: Hyperparameters) -> list[str]:
    arguments = ["--rnn-cell-type", str(hp["rnn_cell_type"]), "--rnn-num-hidden", str(hp["rnn_num_hidden"]),
                 "--rnn-attention-type", str(hp["rnn_attention_type"]),
                 "--rnn-decoder-state-init", str(hp["rnn_decoder_state_init"]),
                 "--rnn-decoder-hidden-dropout", str(hp["rnn_decoder_hidden_dropout"]),
                 "--rnn-first-residual-layer", str(hp["rnn_first_residual_layer"])]
    if hp["rnn_attention_num_hidden"] is not None:
        arguments += ["--rnn-attention-num-hidden", str(hp["rnn_attention_num_hidden"])]
    if hp["rnn_attention_in_upper_layers"]:
        arguments.append("--rnn-attention-in-upper-layers")
    if hp["rnn_residual_connections"]:
        arguments.append("--rnn-residual-connections")
    return arguments


def cnn_arguments(hp: Hyperparameters) -> list[str]:
    return ["--cnn-num-hidden", str(hp["cnn_num_hidden"]),
            "--cnn-kernel-width", f"{hp['cnn_kernel_width_encoder']}:{hp['cnn_kernel_width_decoder']}",
            "--cnn-activation-type", str(hp["cnn_activation_type"]),
            "--cnn-positional-embedding-type", "learned", "--cnn-hidden-dropout", str(hp["cnn_hidden_dropout"])]


def training_arguments(hp: Hyperparameters) -> list[str]:
    max_updates = int(hp["max_num_batches"])
    interval = int(hp["checkpoint_frequency_num_batches"])
    if max_updates > 0:
        interval = min(interval, max_updates)
    clip = float(hp["clip_gradient"])
    arguments = ["--batch-type", str(hp["batch_type"]), "--batch-size", str(hp["batch_size"]),
                 "--bucket-width", str(hp["bucket_width"]),
                 "--max-seq-len", f"{hp['max_seq_len_source']}:{hp['max_seq_len_target']}",
                 "--optimizer", str(hp["optimizer_type"]), "--initial-learning-rate", str(hp["learning_rate"]),
                 "--weight-decay", str(hp["weight_decay"]),
                 "--learning-rate-scheduler-type", str(hp["lr_scheduler_type"]).replace("_", "-"),
                 "--learning-rate-reduce-factor", str(hp["plateau_reduce_lr_factor"]),
                 "--learning-rate-reduce-num-not-improved", str(hp["plateau_reduce_lr_threshold"]),
                 "--learning-rate-half-life", str(hp["fixed_rate_lr_half_life"]),
                 "--label-smoothing", str(hp["label_smoothing"]),
                 "--gradient-clipping-type", "abs" if clip > 0 else "none",
                 "--gradient-clipping-threshold", str(clip),
                 "--weight-init", str(hp["weight_init_type"]), "--weight-init-scale", str(hp["weight_init_scale"]),
                 "--weight-init-xavier-factor-type", str(hp["xavier_factor_type"]),
                 "--checkpoint-interval", str(interval),
                 "--max-num-checkpoint-not-improved", str(hp["checkpoint_threshold"]),
                 "--optimized-metric", str(hp["optimized_metric"]),
                 "--decode-and-evaluate", "0", "--keep-last-params", "1"]
    if max_updates > 0:
        arguments += ["--max-updates", str(max_updates)]
    if hp["momentum"] is not None:
        arguments += ["--momentum", str(hp["momentum"])]
    if int(hp["min_num_epochs"]) > 0:
        arguments += ["--min-num-epochs", str(hp["min_num_epochs"])]
    if hp["max_num_epochs"] is not None:
        arguments += ["--max-num-epochs", str(hp["max_num_epochs"])]
    if not hp["bucketing_enabled"]:
        arguments.append("--no-bucketing")
    return arguments
