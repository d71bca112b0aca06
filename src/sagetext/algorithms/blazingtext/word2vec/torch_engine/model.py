"""The parameters our word2vec engines train, and how they become the job's artifacts.

Both the PyTorch engine and the native engine hold the input rows (``InputRows``: words, then
with subwords the char n-gram buckets) and the output rows as torch tensors (the native engine
works on their memory through numpy), start from the same initialisation, and write
vectors.txt, vectors.bin and eval.json exactly as the gensim engine writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec import evaluation
from sagetext.algorithms.blazingtext.word2vec.torch_engine.corpus_ids import CorpusIds
from sagetext.algorithms.blazingtext.word2vec.torch_engine.input_rows import InputRows
from sagetext.algorithms.blazingtext.word2vec.vectors import FastTextFields, Subwords, WordVectors, write_artifacts
from sagetext.contract.context import TrainingContext


@dataclass
class Model:
    inputs: InputRows
    output: torch.Tensor  # (n_words, dim) float32, zeros at the start as in word2vec.c


def create_model(data: CorpusIds, hp: BlazingTextHyperparameters, device: torch.device) -> Model:
    """The same initial parameters on every worker (seeded with ``seed``, not ``seed + rank``)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(hp.seed)
    subwords = (hp.min_char, hp.max_char, hp.buckets) if hp.subwords else None
    inputs = InputRows.create(data.words, hp.vector_dim, device, generator, subwords)
    return Model(inputs, torch.zeros((len(data.words), hp.vector_dim), dtype=torch.float32, device=device))


def write_model(ctx: TrainingContext, data: CorpusIds, model: Model, hp: BlazingTextHyperparameters) -> WordVectors:
    """vectors.txt, vectors.bin and (evaluation=true) eval.json, exactly as the gensim path writes them."""
    inputs = model.inputs
    subwords = Subwords(inputs.minn, inputs.maxn, inputs.ngram_rows()) if inputs.subwords else None
    vectors = WordVectors(data.words, inputs.word_rows(), data.counts.tolist(), subwords)
    fasttext = FastTextFields.of(hp, model.output.cpu().numpy(), data.raw_words)
    matrix = None
    if subwords is not None:
        everyone = torch.arange(len(data.words), device=inputs.weight.device)
        matrix = inputs.gather(everyone)[0].cpu().numpy()  # each word's mean of its own and its n-gram rows
    write_artifacts(ctx.model_dir, vectors, fasttext, matrix)
    if hp.evaluation:
        evaluation.run_evaluation(vectors.vector, ctx.model_dir, ctx.metrics)
    return vectors
