"""`bench train` / `bench infer`: input paths side by side (paths.py) or long inputs (lengths.py), one results file."""

from __future__ import annotations

from pathlib import Path

from ..device import default_device
from ..errors import UserError
from ..provenance import device_name, provenance
from .flops import add_mfu, matmul_tflops
from .lengths import run_lengths
from .paths import BenchConfig, ratios, run_bench, sample

__all__ = ["BenchConfig", "bench", "format_table"]


def bench(cfg: BenchConfig, data, output: str | None = None) -> dict:
    """Run the paths on a seeded sample of SST-2 train sentences; print a table; write the JSON results file."""
    import tempfile

    from ..data import load_split
    from ..tasks import get_task

    if output and Path(output).exists():
        raise UserError(f"{output}: exists (results are not overwritten; choose another --output)")
    if output:  # a folder it cannot write to is found now, not after the whole benchmark
        try:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=Path(output).parent).close()
        except OSError as exc:
            raise UserError(f"{output}: cannot write there ({exc.strerror or exc})") from None
    train = load_split(data, get_task(data.task), "train")
    sentences, labels = sample(train["sentence"], train["label"], cfg.sentences, cfg.seed)
    long_inputs = cfg.lengths or cfg.variable_means
    results = run_lengths(cfg, sentences) if long_inputs else run_bench(cfg, sentences, labels)
    rate = matmul_tflops(default_device(), cfg.bf16)
    add_mfu(results, rate)
    report = {
        "benchmark": f"bench {cfg.mode}",
        "config": {k: v for k, v in cfg.__dict__.items()},
        "device": device_name(),
        "matmul": rate,
        "results": results,
        "ratios_real_tokens_per_s": ratios([r for r in results if r.get("supported", True)]),
        **provenance(),
    }
    if output:
        _write_new(Path(output), report)
    return report


def _write_new(path: Path, report: dict) -> None:
    """Results are never written over a file: one that took the name while this ran keeps it, and the results
    go to the first free `<name>-N.json` beside it, said in a warning."""
    import itertools
    import logging

    from ..outputs import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    others = (path.with_name(f"{path.stem}-{n}{path.suffix}") for n in itertools.count(1))
    for target in itertools.chain([path], others):
        try:
            write_json(target, report, new=True)
        except FileExistsError:
            continue
        if target != path:
            logging.getLogger(__name__).warning("%s appeared while the benchmark ran; results written to %s", path,
                                                target)
        return


def format_table(report: dict) -> str:
    rows = [f"{'path':<12} {'real tok/s':>11} {'sent/s':>8} {'padding':>8} {'s/step':>8} {'peak MB':>8}"]
    for r in report["results"]:
        if not r.get("supported", True):
            rows.append(f"{r['path']:<12} unsupported: {r['reason']}")
            continue
        rows.append(f"{r['path']:<12} {r['real_tokens_per_s']:>11.1f} {r['sentences_per_s']:>8.2f} "
                    f"{r['padding_fraction']:>8.1%} {r['seconds_per_step_median']:>8.3f} {r['peak_memory_mb']:>8.0f}")
    if any(r["path"] == "grouped" for r in report["results"]) and len(report["results"]) > 1:
        rows.append("grouped times length-grouped batches of other sentences than the other paths' (shorter or "
                    "longer): compare it by real tok/s, not sent/s")
    return "\n".join(rows)
