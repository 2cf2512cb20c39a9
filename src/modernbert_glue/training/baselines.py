"""Non-fine-tuned baselines that write the same run folder as `train`:

- ``tfidf``: word 1-2 gram TF-IDF + logistic regression;
- ``sbert-frozen``: frozen sentence-transformers embeddings (all-MiniLM-L6-v2 by default) + logistic regression,
  the embeddings cached on disk keyed by model and data.

The regularisation strength C is chosen on a held-out 10% of train, then the model is refit on all of train.
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

from ..config import DataConfig
from ..data import labelled_eval_sets, load_columns, load_split
from ..device import device_type
from ..errors import UserError
from ..evaluation.runfolder import evaluate_into
from ..models import resolve_model
from ..outputs import check_output, open_output, write_json
from ..provenance import device_name, provenance
from ..tasks import get_task

log = logging.getLogger(__name__)

BASELINES = ("tfidf", "sbert-frozen")
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


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modernbert-glue" / "embeddings"


class Embedder:
    """Frozen sentence-transformers encoder whose embeddings are cached on disk per (model, texts)."""

    def __init__(self, encoder: str, cache_dir: Path | None):
        from sentence_transformers import SentenceTransformer

        self.name = encoder
        self.path = resolve_model(encoder)
        self.model = SentenceTransformer(self.path, device=device_type())
        self.cache_dir = cache_dir

    def __call__(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256(json.dumps([self.name, str(self.path), texts]).encode()).hexdigest()[:32]
        cached = self.cache_dir / f"{key}.npy" if self.cache_dir else None
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
    """features(texts) -> logistic regression; `probabilities` has the same signature as Classifier's."""

    def __init__(self, cfg: BaselineConfig):
        self.cfg = cfg
        self.classifier = None
        if cfg.name == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
            self.embedder = None
        else:
            self.vectorizer = None
            self.embedder = Embedder(cfg.encoder, Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir())

    def _features(self, texts: list[str], fit: bool = False):
        if self.embedder is not None:
            return self.embedder(texts)
        return self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)

    def fit(self, texts: list[str], labels: list[int]) -> dict:
        """Choose C on a held-out slice of train, refit on all of it; returns the search table."""
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.cfg.seed)
        order = rng.permutation(len(texts))
        n_hold = max(1, int(len(texts) * self.cfg.holdout_fraction))
        hold, fit_idx = order[:n_hold], order[n_hold:]
        labels_arr = np.asarray(labels)
        x_fit = self._features([texts[i] for i in fit_idx], fit=True)
        x_hold = self._features([texts[i] for i in hold])
        scores = {}
        for c in C_GRID:
            clf = LogisticRegression(C=c, max_iter=2000).fit(x_fit, labels_arr[fit_idx])
            scores[c] = float((clf.predict(x_hold) == labels_arr[hold]).mean())
        best_c = max(C_GRID, key=lambda c: (scores[c], -c))
        self.classifier = LogisticRegression(C=best_c, max_iter=2000).fit(self._features(texts, fit=True), labels_arr)
        return {"C": best_c, "holdout_accuracy": scores, "holdout_size": int(n_hold)}

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.classifier.predict_proba(self._features(texts))

    def logits(self, texts: list[str]) -> np.ndarray:
        """Scores whose softmax is `probabilities` (binary: [0, decision function])."""
        scores = self.classifier.decision_function(self._features(texts))
        return np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores

    @property
    def label_names(self) -> list[str]:
        return list(get_task(self.cfg.task).label_names)

    def save(self, folder: Path) -> None:
        import joblib

        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump({"vectorizer": self.vectorizer, "classifier": self.classifier}, folder / "baseline.joblib")
        write_json(folder / "baseline.json", asdict(self.cfg))

    @classmethod
    def load(cls, folder: str | Path) -> BaselineModel:
        import joblib

        folder = Path(folder)
        cfg = BaselineConfig(**json.loads((folder / "baseline.json").read_text()))
        model = cls.__new__(cls)
        model.cfg = cfg
        parts = joblib.load(folder / "baseline.joblib")
        model.vectorizer, model.classifier = parts["vectorizer"], parts["classifier"]
        model.embedder = None if cfg.name == "tfidf" else Embedder(cfg.encoder, None)
        return model


def is_baseline_folder(folder: str | Path) -> bool:
    return (Path(folder) / "baseline.json").is_file()


def run_baseline(cfg: BaselineConfig, data: DataConfig, output_dir: str, *, overwrite: bool = False) -> dict:
    """Fit a baseline on train, evaluate it like `train` does, write the run folder; returns metrics.json."""
    if cfg.name not in BASELINES:
        raise UserError(f"unknown baseline '{cfg.name}' (available: {', '.join(BASELINES)})")
    out = Path(output_dir)
    check_output(out, "run", overwrite=overwrite)
    record = provenance()  # at the start: the code and command that this run actually used
    task = get_task(data.task)
    train_raw = load_split(data, task, "train")
    eval_sets = labelled_eval_sets(data, task, load_columns(data, task, "validation"))

    cfg.task = task.name
    model = BaselineModel(cfg)
    started = time.perf_counter()
    search = model.fit(list(train_raw["sentence"]), list(train_raw["label"]))
    train_seconds = time.perf_counter() - started
    folder = open_output(out, "run", overwrite=overwrite)
    with folder.staged_dir("model") as staged:
        model.save(staged)
    name = cfg.name if cfg.name == "tfidf" else f"sbert-frozen:{cfg.encoder}"
    metrics = {
        "task": task.name,
        "model": name,
        "random_init": False,
        "preset": f"baseline:{cfg.name}",
        **evaluate_into(folder, model.probabilities, eval_sets),
        "train_samples": len(train_raw),
        "train_seconds": round(train_seconds, 2),
        "train_samples_per_second": round(len(train_raw) / max(train_seconds, 1e-9), 2),
        "epochs": None,
        "seed": cfg.seed,
        "device": device_name(),
        "C": search["C"],
    }
    folder.write_json("metrics.json", metrics)
    folder.write_json("run.json", {"config": {"baseline": asdict(cfg), "data": asdict(data)}, "search": search,
                                   **record})
    folder.finish()
    log.info("%s: dev accuracy %.4f; run folder %s", name, metrics["eval_accuracy"], out)
    return metrics
