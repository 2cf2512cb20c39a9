"""Non-fine-tuned baselines that write the same run folder as `train`:

- ``tfidf``: word 1-2 gram TF-IDF + logistic regression;
- ``sbert-frozen``: frozen sentence-transformers embeddings (all-MiniLM-L6-v2 by default) + logistic regression,
  the embeddings cached on disk keyed by model and data;
- ``majority``: the trivial floor, reading no text: train's class frequencies (predicting its majority class), or
  for regression train's mean score. Every other system's interval should clear its interval.

Pair tasks use features of both texts, u, v, |u - v| and u * v (as SBERT's classifier objective); regression
tasks fit a ridge regression instead of the logistic one. The regularisation strength is chosen on a held-out 10%
of train (by the task's main metric), then the model is refit on all of train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import DataConfig, check_seeds
from ..data import load_run_data, require_two_classes, split_source, texts_of
from ..device import device_type
from ..errors import UserError
from ..evaluation.runfolder import evaluate_into
from ..evaluation.metrics import task_metrics
from ..locks import releases_on_error
from ..inference_settings import InferenceSettings
from ..models import resolve_model
from ..outputs import check_output, open_output, write_json
from ..provenance import device_name, provenance
from ..run_paths import local_inputs
from ..tasks import Task

log = logging.getLogger(__name__)

BASELINES = ("tfidf", "sbert-frozen", "majority")
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class BaselineConfig:
    name: str
    task: str = "sst2"
    encoder: str = DEFAULT_ENCODER  # sbert-frozen only
    seed: int = 42
    holdout_fraction: float = 0.1
    cache_dir: str | None = None
    # The task as trained (filled by run_baseline; what inference needs, as a model folder's settings):
    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str | None = "label"
    label_names: tuple[str, ...] = ("negative", "positive")
    regression: bool = False
    main_metric: str = "accuracy"

    def __post_init__(self):
        check_seeds([self.seed], "--seed")  # the range train's seeds have
        if self.cache_dir is not None:  # checked before the data and the encoder load
            nearest = next(p for p in [Path(self.cache_dir), *Path(self.cache_dir).absolute().parents] if p.exists())
            if not nearest.is_dir():
                raise UserError(f"--cache-dir {self.cache_dir}: {nearest} exists and is not a folder")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modernbert-glue" / "embeddings"


class Embedder:
    """Frozen sentence-transformers encoder whose embeddings are cached on disk per (model, texts)."""

    def __init__(self, encoder: str, cache_dir: Path | None):
        from sentence_transformers import SentenceTransformer

        self.name = encoder
        self.path = resolve_model(encoder, "--encoder")
        self.model = SentenceTransformer(self.path, device=device_type())
        self.cache_dir = cache_dir

    def cache_key(self, texts: list[str]) -> str:
        """The encoder (name, folder, and its weight files' size and modification time: weights changed in
        place are another encoder) and the texts."""
        weights = [(str(p.relative_to(self.path)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in sorted(Path(self.path).rglob("*")) if p.suffix in (".safetensors", ".bin", ".pt")]
        return hashlib.sha256(json.dumps([self.name, str(self.path), weights, texts]).encode()).hexdigest()[:32]

    def __call__(self, texts: list[str]) -> np.ndarray:
        cached = self.cache_dir / f"{self.cache_key(texts)}.npy" if self.cache_dir else None
        if cached and cached.is_file():
            return np.load(cached)
        vectors = self.model.encode(texts, batch_size=128, convert_to_numpy=True, show_progress_bar=False)
        if cached:
            import io

            from ..outputs import write_bytes

            buffer = io.BytesIO()
            np.save(buffer, vectors)
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(cached, buffer.getvalue())  # a killed run leaves no half-written cache entry
        return vectors


class BaselineModel:
    """features(texts or pairs) -> logistic (or ridge) regression; the classifier contract of classifier.py."""

    def __init__(self, cfg: BaselineConfig):
        self.cfg = cfg
        self.classifier = None
        if cfg.name == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
            self.embedder = None
        elif cfg.name == "majority":
            self.vectorizer = self.embedder = None
        else:
            self.vectorizer = None
            self.embedder = Embedder(cfg.encoder, Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir())

    @property
    def settings(self) -> InferenceSettings:
        c = self.cfg
        return InferenceSettings(task=c.task, text_columns=tuple(c.text_columns), label_column=c.label_column,
                                 regression=c.regression)

    def _encode(self, texts: list[str], fit: bool):
        if self.embedder is not None:
            return self.embedder(texts)
        return self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)

    def _features(self, texts: list, fit: bool = False):
        if self.cfg.name == "majority":
            return np.zeros((len(texts), 1))  # the dummy estimators read no feature
        if not texts or isinstance(texts[0], str):
            return self._encode(texts, fit)
        first, second = (list(side) for side in zip(*texts))
        if fit and self.vectorizer is not None:
            self.vectorizer.fit(first + second)  # one vocabulary for both sides
        u, v = self._encode(first, False), self._encode(second, False)
        if self.embedder is not None:
            return np.hstack([u, v, np.abs(u - v), u * v])
        from scipy.sparse import hstack

        return hstack([u, v, abs(u - v), u.multiply(v)]).tocsr()

    def _estimator(self, strength: float):
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.linear_model import LogisticRegression, Ridge

        if self.cfg.name == "majority":
            return DummyRegressor(strategy="mean") if self.cfg.regression else DummyClassifier(strategy="prior")
        if self.cfg.regression:
            return Ridge(alpha=1.0 / strength)
        return LogisticRegression(C=strength, max_iter=2000)

    def _score(self, estimator, x, labels) -> float:
        predictions = estimator.predict(x)
        values = task_metrics(labels, predictions, regression=self.cfg.regression, num_labels=len(self.cfg.label_names))
        return values[self.cfg.main_metric]

    def fit(self, texts: list, labels: list, source: str = "the training data") -> dict:
        """Choose C (ridge: alpha = 1 / C) on a held-out slice of train by the task's main metric, refit on all
        of it; returns the search table. `source` names the training data in the lines that refuse it."""
        if self.cfg.name == "majority":  # nothing to choose
            self.classifier = self._estimator(1.0).fit(self._features(texts), np.asarray(labels))
            return {"C": None}
        rng = np.random.default_rng(self.cfg.seed)
        order = rng.permutation(len(texts))
        n_hold = max(1, int(len(texts) * self.cfg.holdout_fraction))
        hold, fit_idx = order[:n_hold], order[n_hold:]
        labels_arr = np.asarray(labels)
        if not self.cfg.regression and len(np.unique(labels_arr[fit_idx])) < 2:
            raise UserError(f"{source}: the training rows outside the held-out slice for choosing C hold one class "
                            f"only; give more training rows (now {len(texts)})")
        try:
            x_fit = self._features([texts[i] for i in fit_idx], fit=True)
        except ValueError as exc:  # sklearn's "empty vocabulary"; the refit on all rows below then has words too
            if self.vectorizer is None or "empty vocabulary" not in str(exc):
                raise
            raise UserError(self._no_words(texts, source)) from None
        x_hold = self._features([texts[i] for i in hold])
        scores = {}
        for c in C_GRID:
            scores[c] = float(self._score(self._estimator(c).fit(x_fit, labels_arr[fit_idx]), x_hold, labels_arr[hold]))
        best_c = max(C_GRID, key=lambda c: (scores[c], -c))
        self.classifier = self._estimator(best_c).fit(self._features(texts, fit=True), labels_arr)
        return {"C": best_c, f"holdout_{self.cfg.main_metric}": scores, "holdout_size": int(n_hold)}

    def _no_words(self, texts: list, source: str) -> str:
        """Why TF-IDF found no vocabulary: no training text holds a word it counts, or none outside the held-out
        slice does."""
        analyze = self.vectorizer.build_analyzer()
        flat = [t for text in texts for t in ((text,) if isinstance(text, str) else text)]
        where = (f"the rows left after holding out {self.cfg.holdout_fraction:.0%} to choose C"
                 if any(map(analyze, flat)) else "any training text")
        return (f"{source}: TF-IDF finds no words in {where} (it counts tokens of two or more letters or digits; "
                "'?' or ':)' hold none); give training texts with words")

    def probabilities(self, texts: list) -> np.ndarray:
        if self.cfg.regression:
            raise UserError("a regression baseline predicts values, not probabilities")
        probs = self.classifier.predict_proba(self._features(texts))
        out = np.zeros((len(probs), len(self.cfg.label_names)))
        out[:, self.classifier.classes_.astype(int)] = probs  # a class absent from training gets probability 0
        return out

    def scores(self, texts: list) -> np.ndarray:
        if self.cfg.regression:
            return self.classifier.predict(self._features(texts))[:, None]
        return self.probabilities(texts)

    def logits(self, texts: list) -> np.ndarray:
        """Scores whose softmax is `probabilities` (binary: [0, decision function]); regression: the values."""
        if self.cfg.regression:
            return self.scores(texts)
        if not hasattr(self.classifier, "decision_function"):  # majority: log-probabilities
            return np.log(np.clip(self.probabilities(texts), 1e-12, None))
        scores = self.classifier.decision_function(self._features(texts))
        return np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores

    @property
    def label_names(self) -> list[str]:
        return ["score"] if self.cfg.regression else list(self.cfg.label_names)

    def save(self, folder: Path) -> None:
        import joblib

        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump({"vectorizer": self.vectorizer, "classifier": self.classifier}, folder / "baseline.joblib")
        write_json(folder / "baseline.json", asdict(self.cfg))

    @classmethod
    def load(cls, folder: str | Path) -> BaselineModel:
        import joblib

        folder = Path(folder)
        raw = json.loads((folder / "baseline.json").read_text())
        cfg = BaselineConfig(**raw)
        if "label_names" not in raw:  # written before pair and regression tasks: SST-2's names
            from ..tasks import get_task

            cfg.label_names = get_task(cfg.task).label_names
        model = cls.__new__(cls)
        model.cfg = cfg
        parts = joblib.load(folder / "baseline.joblib")
        model.vectorizer, model.classifier = parts["vectorizer"], parts["classifier"]
        model.embedder = Embedder(cfg.encoder, None) if cfg.name == "sbert-frozen" else None
        return model


def describe_task(cfg: BaselineConfig, task: Task) -> None:
    """Record in the baseline's config what inference needs to know of its task."""
    cfg.task, cfg.text_columns, cfg.label_column = task.name, task.text_columns, task.label_column
    cfg.label_names, cfg.regression, cfg.main_metric = task.label_names, task.regression, task.main_metric


def is_baseline_folder(folder: str | Path) -> bool:
    return (Path(folder) / "baseline.json").is_file()


@releases_on_error
def run_baseline(cfg: BaselineConfig, data: DataConfig, output_dir: str, *, overwrite: bool = False) -> dict:
    """Fit a baseline on train, evaluate it like `train` does, write the run folder; returns metrics.json."""
    if cfg.name not in BASELINES:
        raise UserError(f"unknown baseline '{cfg.name}' (available: {', '.join(BASELINES)})")
    out = Path(output_dir)
    check_output(out, "run", overwrite=overwrite, inputs=local_inputs(data, cfg.encoder, cfg.cache_dir))
    record = provenance()  # at the start: the code and command that this run actually used
    task, train_raw, eval_sets = load_run_data(data)

    if not task.regression and cfg.name != "majority":
        found = {task.label_names[i] for i in train_raw["label"]}
        require_two_classes(found, split_source(data, task, "train"))
    describe_task(cfg, task)
    model = BaselineModel(cfg)
    started = time.perf_counter()
    search = model.fit(texts_of(train_raw), list(train_raw["label"]), source=split_source(data, task, "train"))
    train_seconds = time.perf_counter() - started
    folder = open_output(out, "run", overwrite=overwrite)
    with folder.staged_dir("model") as staged:
        model.save(staged)
    name = f"sbert-frozen:{cfg.encoder}" if cfg.name == "sbert-frozen" else cfg.name
    metrics = {
        "task": task.name,
        "model": name,
        "random_init": False,
        "preset": f"baseline:{cfg.name}",
        "main_metric": task.main_metric,
        **evaluate_into(folder, model.scores, eval_sets, regression=task.regression,
                        metrics=task.metrics),
        "train_samples": len(train_raw["label"]),
        "train_seconds": round(train_seconds, 2),
        "train_samples_per_second": round(len(train_raw["label"]) / max(train_seconds, 1e-9), 2),
        "epochs": None,
        "seed": cfg.seed,
        "device": device_name(),
        "C": search["C"],
    }
    folder.write_json("metrics.json", metrics)
    folder.write_json("run.json", {"config": {"baseline": asdict(cfg), "data": asdict(data)}, "search": search,
                                   **record})
    folder.finish()
    log.info("%s: dev %s %.4f; run folder %s", name, task.main_metric, metrics[f"eval_{task.main_metric}"], out)
    return metrics
