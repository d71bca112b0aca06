"""``sagetext test``: score a trained model on held-out data, as each algorithm's users score it.

- BlazingText supervised: fastText's ``test``: ``N`` (lines with at least one label the model
  knows), precision and recall at ``k`` over all predicted and all gold labels, printed as
  fastText prints them. Predictions come from the served predictor through
  ``serving.invocation``, exactly as ``/invocations`` answers ``{"source": ..., "k": k}``.
- Seq2Seq: the translations of a source file (one sentence a line, through
  ``serving.batch``, as ``sagetext predict`` makes them) scored against a reference file with
  sacreBLEU, on its 0-100 scale, with its signature.
- NTM: on held-out documents (a file or folder of RecordIO-protobuf or CSV, as a training
  channel), the per-document total loss and perplexity that training's ``test`` channel
  reports, the topics' TU, and their NPMI counted on these documents.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagetext.data.media_types import JSONLINES, TEXT
from sagetext.data.text import LABEL_PREFIX
from sagetext.errors import ClientError
from sagetext.serving import batch, codecs, invocation

if TYPE_CHECKING:
    from sagetext.algorithms.base import Predictor

_TOKEN_SEPARATORS = re.compile(rb"[ \t\n\v\f\r\0]+")  # fastText's whitespace
BATCH_LINES = 1000


@dataclass(frozen=True)
class PrecisionRecall:
    examples: int  # fastText's N
    k: int
    precision: float
    recall: float

    def report(self) -> str:
        """fastText's output: ``N``, ``P@k`` and ``R@k``, three significant digits."""
        return f"N\t{self.examples}\nP@{self.k}\t{self.precision:.3g}\nR@{self.k}\t{self.recall:.3g}"


def precision_recall(predictor: Predictor, path: Path, k: int = 1) -> PrecisionRecall:
    """fastText's ``test`` on a ``__label__`` file: lines without a label the model knows are
    left out (labels it never saw in training count for nothing, as in fastText)."""
    if k < 1:
        raise ClientError(f"-k {k}: expected a positive integer")
    known = set(getattr(predictor, "labels", ()))
    if not known:
        raise ClientError("sagetext test on a __label__ file needs a supervised BlazingText (or fastText) model")
    types = invocation.negotiate(predictor, JSONLINES, None)
    examples = gold = predicted = hits = 0
    for requests, labels in _labelled_batches(path, known, k):
        answers = codecs.decode(JSONLINES, invocation.answer(predictor, types, requests))
        for answer, line_labels in zip(answers, labels):
            examples += 1
            gold += len(line_labels)
            predicted += len(answer["label"])
            hits += sum(1 for label in answer["label"] if label in line_labels)
    return PrecisionRecall(examples, k, hits / predicted if predicted else float("nan"),
                           hits / gold if gold else float("nan"))


def _labelled_batches(path: Path, known: set[str], k: int) -> Iterator[tuple[bytes, list[list[str]]]]:
    """(JSON Lines request, each line's known labels) for every BATCH_LINES labelled lines."""
    if not path.is_file():
        raise ClientError(f"{path}: no such file")
    requests: list[bytes] = []
    labels: list[list[str]] = []
    with open(path, "rb") as f:
        for line in f:
            tokens = [t for t in _TOKEN_SEPARATORS.split(line) if t]
            line_labels = [t.decode("utf-8", "replace") for t in tokens if t.startswith(LABEL_PREFIX)]
            line_labels = [label for label in line_labels if label in known]
            if not line_labels:
                continue
            words = b" ".join(t for t in tokens if not t.startswith(LABEL_PREFIX)).decode("utf-8", "replace")
            requests.append((json.dumps({"source": words, "k": k}, ensure_ascii=False) + "\n").encode("utf-8"))
            labels.append(line_labels)
            if len(requests) == BATCH_LINES:
                yield b"".join(requests), labels
                requests, labels = [], []
    if requests:
        yield b"".join(requests), labels


@dataclass(frozen=True)
class Bleu:
    score: Any  # sacrebleu's BLEUScore
    signature: str

    def report(self) -> str:
        return f"{self.score}\n{self.signature}"


def bleu(predictor: Predictor, source: Path, reference: Path, tokenize: str = "13a",
         translations: Path | None = None) -> Bleu:
    """sacreBLEU of the model's translations of ``source`` against ``reference`` (line by line);
    the translations are also written to ``translations`` when given."""
    from sacrebleu.metrics import BLEU

    for path in (source, reference):
        if not path.is_file():
            raise ClientError(f"{path}: no such file")
    answers = io.BytesIO()
    with open(source, "rb") as f:
        batch.predict_stream(predictor, f, answers, TEXT, name=source.name)
    hypotheses = [json.loads(line)["target"] for line in answers.getvalue().splitlines()]
    references = reference.read_text("utf-8").splitlines()
    if len(references) != len(hypotheses):
        raise ClientError(f"{reference} has {len(references)} lines but {source} has {len(hypotheses)}; "
                          "a reference file needs one line per source line")
    if translations is not None:
        translations.write_text("".join(h + "\n" for h in hypotheses), "utf-8")
    metric = BLEU(tokenize=tokenize)
    return Bleu(metric.corpus_score(hypotheses, [references]), str(metric.get_signature()))


@dataclass(frozen=True)
class TopicScores:
    documents: int
    total_loss: float
    perplexity: float
    tu: float
    npmi: float

    def report(self) -> str:
        return (f"N\t{self.documents}\ntest:total_loss\t{self.total_loss:.6g}\ntest:perplexity\t"
                f"{self.perplexity:.6g}\ntu\t{self.tu:.6g}\nnpmi\t{self.npmi:.6g}")


def topic_scores(model_dir: Path, held_out: Path, seed: int | None = None) -> TopicScores:
    """NTM on held-out documents: what training's ``test`` channel reports, TU, and NPMI
    counted on these documents. ``seed`` fixes the posterior sample, as training's ``seed``
    does (default: the spec's)."""
    from sagetext import specs
    from sagetext.algorithms.ntm import coherence, topics, trainer
    from sagetext.algorithms.ntm import model as ntm_model
    from sagetext.algorithms.ntm.documents import DocumentStore
    from sagetext.data import bow, compression

    model = ntm_model.load(model_dir).eval()
    files = sorted(p for p in held_out.rglob("*") if p.is_file()) if held_out.is_dir() else [held_out]
    if not files or not files[0].is_file():
        raise ClientError(f"{held_out}: no such file or folder of documents")
    seed = specs.load("ntm")["hyperparameters"]["seed"]["default"] if seed is None else seed
    store = DocumentStore(model.config.feature_dim)
    try:
        for path in files:
            with open(path, "rb") as raw:
                stream = compression.open_stream(raw, f"file {path.name}")
                for doc in bow.read_stream(stream, path.name, model.config.feature_dim):
                    store.add(doc.ids, doc.counts)
        if len(store) == 0:
            raise ClientError(f"{held_out} holds no documents")
        loss, perplexity = trainer.evaluate(model, store, "cpu", seed)
        topic_word = model.topic_word_logits().detach().cpu().numpy()
        counter = coherence.CooccurrenceCounter(topics.metric_words(topic_word))
        for lo in range(0, len(store), trainer.EVAL_BATCH):
            counter.add(store.word_ids(lo, min(lo + trainer.EVAL_BATCH, len(store))))
        scores = topics.report(topic_word, None, counter).model_scores()
        return TopicScores(len(store), loss, perplexity, float(scores["tu"] or 0.0), float(scores["npmi"] or 0.0))
    finally:
        store.close()
