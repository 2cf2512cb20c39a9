"""Issue 13's device script: the training engine against the plain HF Trainer, ModernBERT-base with random weights
on SST-2 with the paper's recipe (2 epochs of batch 64: 2,106 steps), in one call of at most 5 minutes, compiling
included. It replaces benchmarks/gpu_protocol.py for whole training runs (that script keeps the input paths and
inference).

On a lent GPU, from the repository root. `../shared` does not travel to that machine, so first, here:
    bash benchmarks/gpu_protocol_prepare.sh      (fills the git-ignored .gpu/: config, tokenizer, SST-2, wheels)
then one device call (Python 3.12, torch 2.11+cu130, no `datasets`; the project runs from source), carry [".gpu"],
timeout_s 360:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl &&
    PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 python3 benchmarks/gpu_engine.py $OUT/engine \
        --model .gpu/modernbert-base --data-dir .gpu/sst2 --profile
The engine compiles its encoder layers on a GPU (train.compile auto); if compiling alone eats the budget (see
engine.log and summary.json's errors), the same command with `--set train.compile=off` captures eager steps.
Here, on CPU, a check of the script itself with a tiny model (tests/bench/test_gpu_engine.py runs it):
    .venv/bin/python benchmarks/gpu_engine.py /tmp/gpu-engine --tiny --train-sentences 256 --engine engine \
        --anchor-steps 6 --reference-steps 8 --profile

Steps, most important first, each skipped (and said so) when --budget-seconds (default 290) would not hold it;
files in OUT_DIR (never a non-empty one):
(c) engine_run.json, engine.log: `modernbert-glue train --preset paper --engine auto` in a subprocess, the full run:
    its metrics.json, the "engine" entry of its log_history.json (shapes, CUDA graphs and why any shape was not
    captured, compile, preparation and checkpoint-wait seconds, the loss of every step) and its wall time; the log
    is the run's stderr.
(a) plain_trainer.json: benchmarks/plain_trainer.py (subprocess), --anchor-steps (300) steps, its steady rate and
    the 2-epoch time extrapolated from it.
(b) reference.json: the eager fp32 packed loop, no capture, no padding to budgets, for the first --reference-steps
    (200) of the engine's own batches, from the engine's seed and initial weights: the reference loss curve.
(d) profile.json (--profile), when 90 s are left: torch.profiler on the engine's step (training/step.py), eager
    and replayed: kernels per step, CUDA graphs and the capture report, and the forward / backward / clip /
    optimizer split. CUPTI's count of kernels inside a replayed graph is known to be unreliable (pytorch/kineto
    #1165): graph_launches_per_step and ms_per_step are the replayed step's firm numbers.
(e) variant_run.json, variant.log: (c) again with --variant's settings (default train.compile=off: CUDA graphs of
    eager steps, no compiling), when --variant-seconds (100) are left: the other side of compile's trade-off
    (compiling time against faster steps), measured in the same call. When (c) failed or ran past
    --engine-seconds (130), (e) runs right after it (leaving 80 s for (a) and (b)), and (d) takes (e)'s settings.
    summary.json: device, engine_train_seconds, engine_wall_seconds (preparation and compiling included),
    speedup_over_plain_trainer, the engine's first losses against (b)'s, and the issue's bars.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, TINY, add_model_options, new_output_folder  # benchmarks/common.py, this script's sibling

BAR_SECONDS, BAR_WALL_SECONDS, BAR_SPEEDUP = 15.0, 60.0, 5.0
# "Within bf16 tolerance": torch.testing.assert_close's default for bfloat16, applied to each compared step's loss
# (the engine's, bf16 autocast on a GPU, against the eager fp32 loop's on the same batches).
BF16_RTOL, BF16_ATOL = 1.6e-2, 1e-5
LOSS_WINDOW = 20
PROFILE_SECONDS = 90.0  # (d)'s minimum: preparing 80 steps, compiling and capturing them, profiling
FALLBACK_RESERVE = 80.0  # seconds a fallback variant leaves for (a) and (b): their steps and their start-ups
REGIONS = ("forward", "backward", "clip", "optimizer")  # named in training/step.py's TrainStep.body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    add_model_options(parser)
    parser.add_argument("--budget-seconds", type=float, default=290.0)
    parser.add_argument("--anchor-steps", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=200)
    parser.add_argument("--engine", default="auto", help="train --engine (auto: the engine on a GPU)")
    parser.add_argument("--set", action="append", default=[], dest="sets",
                        help="train --set SECTION.KEY=VALUE for the engine run, e.g. train.compile=off")
    parser.add_argument("--profile", action="store_true", help="(d): torch.profiler on the engine's step")
    parser.add_argument("--variant", action="append", default=None, metavar="SECTION.KEY=VALUE",
                        help="(e): the engine run again with these --set values, last and only when --variant-seconds "
                             "are left (default train.compile=off: capture without compiling, side by side)")
    parser.add_argument("--variant-seconds", type=float, default=100.0)
    parser.add_argument("--engine-seconds", type=float, default=130.0,
                        help="(c)'s time limit (its bar is 60 s): past it, the other steps still get their time")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every load is local; a machine without a network never waits on it
    out = new_output_folder(args.out_dir)
    started = time.perf_counter()
    left = lambda: args.budget_seconds - (time.perf_counter() - started)  # noqa: E731

    engine = run_engine(args, out, timeout=min(left() - 30, args.engine_seconds))
    variant_sets = args.variant if args.variant is not None else ["train.compile=off"]
    # When the engine run failed or ran out of time (its compiling, say), the variant is the measurement left to
    # get: it runs next, keeping FALLBACK_RESERVE seconds for (a) and (b), and the profile takes its settings.
    fallback = "error" in engine and bool(variant_sets)
    profiled = argparse.Namespace(**{**vars(args), "sets": [*args.sets, *(variant_sets if fallback else [])]})

    def run_variant(reserve: float) -> dict:
        return (run_engine(args, out, timeout=left() - reserve, extra_sets=variant_sets, name="variant")
                if variant_sets and left() > args.variant_seconds else skipped(left()))

    variant = run_variant(FALLBACK_RESERVE) if fallback else {"skipped": "not run yet"}
    anchor = attempt(lambda: run_anchor(args, timeout=left() - 20)) if left() > 60 else skipped(left())
    write(out / "plain_trainer.json", anchor)
    reference = attempt(lambda: reference_loop(args)) if left() > 30 else skipped(left())
    write(out / "reference.json", reference)
    # Written now and again at the end: (d) runs in this process without a time limit of its own, and a device
    # call that runs out of time keeps what is already under $OUT.
    summarize(out, args, started, engine, anchor, reference, variant_sets, variant)
    if args.profile:
        # it compiles and captures again, in this process, with no limit of its own: only with time for that
        write(out / "profile.json", attempt(lambda: profile(profiled)) if left() > PROFILE_SECONDS else skipped(left()))
    if not fallback:
        variant = run_variant(10)
    summary = summarize(out, args, started, engine, anchor, reference, variant_sets, variant)
    print(json.dumps({k: v for k, v in summary.items() if not k.endswith("losses")}, indent=1, default=str))


def summarize(out: Path, args, started: float, engine: dict, anchor: dict, reference: dict, variant_sets: list[str],
              variant: dict) -> dict:
    """summary.json from the steps' records."""
    import torch

    from modernbert_glue.provenance import device_name, provenance

    metrics = engine.get("metrics", {})
    first = engine.get("engine", {}).get("step_losses", [])[: len(reference.get("losses", []))]
    agreement = loss_agreement(first, reference.get("losses", []), min(args.reference_steps, metrics.get("steps") or 0))
    wall_s = engine.get("wall_seconds")
    train_s, plain_s = metrics.get("train_seconds"), anchor.get("extrapolated_two_epoch_seconds")
    variant_s = variant.get("metrics", {}).get("train_seconds")
    summary = {
        "device": device_name(), "gpu": torch.cuda.is_available(), "tiny": args.tiny,
        "engine_train_seconds": train_s, "engine_wall_seconds": wall_s,
        "engine_prepare_seconds": engine.get("engine", {}).get("prepare_seconds"),
        "engine_capture_seconds": engine.get("engine", {}).get("capture_seconds"),
        # checkpoint writes: the loop's waits inside train_seconds, the queue's remainder after it (in the wall)
        "engine_checkpoint_blocked_seconds": engine.get("engine", {}).get("checkpoint_blocked_seconds"),
        "engine_checkpoint_wait_seconds": engine.get("engine", {}).get("checkpoint_wait_seconds"),
        "engine_ms_per_step_between_logs": loop_intervals(engine.get("engine", {}).get("loop_seconds_at_logged_steps",
                                                                                            [])),
        "engine_steps": metrics.get("steps"), "engine_dev_accuracy": metrics.get("eval_accuracy"),
        "engine_cuda_graphs": engine.get("engine", {}).get("cuda_graphs"),
        "plain_trainer_extrapolated_seconds": plain_s,
        "plain_trainer_steady_ms_per_step": anchor.get("steady_ms_per_step"),
        "speedup_over_plain_trainer": round(plain_s / train_s, 2) if train_s and plain_s else None,
        "reference_ms_per_step": reference.get("ms_per_step"),
        "engine_first_losses": first, "reference_losses": reference.get("losses", []), **agreement,
        "variant_sets": variant_sets, "variant_train_seconds": variant_s,
        "variant_wall_seconds": variant.get("wall_seconds"),
        "variant_speedup_over_plain_trainer": round(plain_s / variant_s, 2) if variant_s and plain_s else None,
        "variant_dev_accuracy": variant.get("metrics", {}).get("eval_accuracy"),
        "variant_cuda_graphs": variant.get("engine", {}).get("cuda_graphs"), "variant_skipped": variant.get("skipped"),
        "bar_two_epochs_within_15_s": train_s <= BAR_SECONDS if train_s else None,
        "bar_wall_within_60_s": wall_s <= BAR_WALL_SECONDS if train_s and wall_s else None,
        "bar_5x_plain_trainer": plain_s / train_s >= BAR_SPEEDUP if train_s and plain_s else None,
        "elapsed_seconds": round(time.perf_counter() - started, 1), "errors": {
            name: record["error"] for name, record in (("engine", engine), ("anchor", anchor),
                                                        ("reference", reference), ("variant", variant))
            if "error" in record},
        **provenance(),
    }
    write(out / "summary.json", summary)
    return summary


def loss_agreement(engine: list[float], reference: list[float], expected: int) -> dict:
    """The engine's losses against the reference loop's, step by step, and the issue's bar: every one of the
    `expected` first steps within bf16 tolerance (None when fewer were compared: no bar on a cut comparison).
    bf16 rounding and fp32 drift apart over many optimizer steps where a wrong step (a stale input, a missed
    update) is off from the first: the first step out of tolerance, and the LOSS_WINDOW-step means (which average
    the drift's noise out), tell the two apart."""
    pairs = list(zip(engine, reference))
    diffs = [abs(a - b) for a, b in pairs]
    close = [within_bf16(a, b) for a, b in pairs]
    windows = [pairs[i : i + LOSS_WINDOW] for i in range(0, len(pairs), LOSS_WINDOW)]
    means = [(sum(a for a, _ in w) / len(w), sum(b for _, b in w) / len(w)) for w in windows]
    return {"losses_compared": len(pairs),
            "loss_max_abs_difference": round(max(diffs), 5) if diffs else None,
            "loss_mean_abs_difference": round(sum(diffs) / len(diffs), 5) if diffs else None,
            "loss_steps_within_bf16_tolerance": sum(close),
            "loss_first_step_outside_bf16_tolerance": close.index(False) + 1 if False in close else None,
            f"loss_{LOSS_WINDOW}_step_means_within_bf16_tolerance": f"{sum(within_bf16(*m) for m in means)} of "
                                                                     f"{len(means)}",
            "bar_loss_within_bf16_tolerance": all(close) if pairs and len(pairs) == expected else None}


def within_bf16(value: float, reference: float) -> bool:
    return abs(value - reference) <= BF16_ATOL + BF16_RTOL * abs(reference)


def loop_intervals(marks: list[list[float]]) -> dict:
    """ms per step between the engine's logged steps ([step, loop seconds] each, where the host had waited for the
    device): the median, and the slowest interval with the step it ended at (a checkpoint write stalling the loop
    shows there)."""
    rates = [(1000 * (t1 - t0) / (s1 - s0), s1) for (s0, t0), (s1, t1) in zip(marks, marks[1:]) if s1 > s0]
    if not rates:
        return {}
    ordered = sorted(r for r, _ in rates)
    slowest = max(rates)
    return {"median": round(ordered[len(ordered) // 2], 3), "slowest": round(slowest[0], 3),
            "slowest_ending_at_step": slowest[1], "intervals": len(rates)}


def run_engine(args, out: Path, timeout: float, extra_sets: list[str] = (), name: str = "engine") -> dict:
    """(c), and (e) with `extra_sets`: the CLI in a subprocess, its record in NAME_run.json and its stderr in
    NAME.log; its run folder (model weights included) stays in a temporary folder."""
    run_dir = Path(tempfile.mkdtemp(prefix="gpu-engine-")) / "run"
    command = [sys.executable, "-m", "modernbert_glue.cli", "train", "--preset", "paper", "--engine", args.engine,
               "--model", args.model, "--random-init", "--data-dir", str(args.data_dir), "--output-dir", str(run_dir),
               *data_options(args), *(a for item in [*args.sets, *extra_sets] for a in ("--set", item))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    began = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=max(timeout, 1), check=False)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        (out / f"{name}.log").write_text(stderr[-200_000:])
        record = {"error": f"timed out after {timeout:.0f} s", "command": command}
        write(out / f"{name}_run.json", record)
        return record
    wall = time.perf_counter() - began
    (out / f"{name}.log").write_text(proc.stderr[-200_000:])
    record = {"command": command, "returncode": proc.returncode, "wall_seconds": round(wall, 2)}
    if proc.returncode != 0:
        record["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    else:
        history = json.loads((run_dir / "log_history.json").read_text())
        record.update(metrics=json.loads((run_dir / "metrics.json").read_text()), engine=history.get("engine", {}),
                      log_history=history["log_history"])
    write(out / f"{name}_run.json", record)
    return record


def run_anchor(args, timeout: float) -> dict:
    """(a): benchmarks/plain_trainer.py in a subprocess (its own process: its memory is not the engine's)."""
    target = Path(tempfile.mkdtemp(prefix="plain-trainer-")) / "anchor.json"
    steps = [] if not args.train_sentences else ["--train-sentences", str(args.train_sentences)]
    command = [sys.executable, str(REPO / "benchmarks" / "plain_trainer.py"), str(target), "--model", args.model,
               "--data-dir", str(args.data_dir), "--steps", str(args.anchor_steps),
               "--warmup-steps", str(min(10, args.anchor_steps // 3)), *steps, *(["--tiny"] if args.tiny else [])]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=max(timeout, 1), check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": command}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-3000:], "command": command}
    return {**json.loads(target.read_text()), "command": command}


def engine_inputs(args):
    """What the engine run trains on, built as the engine builds it: config, seed, initial weights, batches."""
    from transformers import set_seed

    from modernbert_glue.config import resolve_run_config
    from modernbert_glue.data import encode_texts, load_columns
    from modernbert_glue.models import build_classifier
    from modernbert_glue.tasks import get_task
    from modernbert_glue.training.budgets import plan_run

    cfg = resolve_run_config("paper", {"model.name": args.model, "model.random_init": True,
                                       "data.data_dir": str(args.data_dir),
                                       "data.max_train_samples": args.train_sentences},
                             args.sets, TINY if args.tiny else None)
    train = load_columns(cfg.data, get_task("sst2"), "train")
    set_seed(cfg.train.seed)
    model, tokenizer = build_classifier(cfg.model.name, get_task("sst2"), random_init=True,
                                        overrides=cfg.model.overrides)
    ids = encode_texts(tokenizer, train["sentence"], cfg.data.max_length)
    t = cfg.train
    plan = plan_run([len(x) for x in ids], t.batch_size, t.epochs, t.seed, t.max_steps, t.packed_token_budget)
    return cfg, model, tokenizer, ids, train, plan


def reference_loop(args) -> dict:
    """(b): eager fp32, each batch packed to its own shape (no budget), the engine's optimizer and schedule."""
    import torch

    from modernbert_glue.device import default_device, sync
    from modernbert_glue.inputs import pack_batch
    from modernbert_glue.packing import PackedClassifier
    from modernbert_glue.training.step import build_optimizer

    cfg, model, tokenizer, ids, train, plan = engine_inputs(args)
    device = default_device()
    packed = PackedClassifier(model.to(device).train())
    optimizer, schedule = build_optimizer(model, cfg.train, plan.total_steps, device)
    params = [p for p in model.parameters() if p.requires_grad]
    losses = []
    steps = min(args.reference_steps, plan.total_steps)
    sync()
    began = time.perf_counter()
    for indices in plan.batches[:steps]:
        batch = pack_batch([ids[i] for i in indices], tokenizer.pad_token_id, [train["label"][i] for i in indices])
        batch = batch.to(device)
        loss = torch.nn.functional.cross_entropy(packed(batch).logits.float(), batch.labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    sync()
    seconds = time.perf_counter() - began
    return {"loop": "eager fp32 packed, own shape per batch", "steps": steps,
            "ms_per_step": round(1000 * seconds / max(steps, 1), 3), "losses": [round(float(x), 6) for x in losses]}


def profile(args) -> dict:
    """(d): the engine's own step (EngineRun.prepare: batches, compile, capture), profiled eager and replayed."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from modernbert_glue.device import sync
    from modernbert_glue.training.engine import EngineRun

    few = argparse.Namespace(**{**vars(args), "train_sentences": min(args.train_sentences or 2560, 2560)})
    cfg, model, tokenizer, ids, train, plan = engine_inputs(few)  # 80 steps: enough for every shape
    dev = {"sentence": train["sentence"][:64], "label": train["label"][:64]}
    run = EngineRun(cfg, Path(tempfile.mkdtemp(prefix="profile-")), model, tokenizer, train, dev)
    run.prepare(None)
    gpu = run.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    batch = run.batches[len(run.batches) // 2]

    def measured(step, n):
        """(seconds per step without the profiler, the profile of n more steps)."""
        step(batch)  # warm
        sync()
        began = time.perf_counter()
        for _ in range(n):
            step(batch)
        sync()
        seconds = (time.perf_counter() - began) / n
        with torch_profile(activities=activities) as prof:
            for _ in range(n):
                step(batch)
            sync()
        return seconds, prof

    def eager(b):
        run.step.optimizer.zero_grad(set_to_none=True)
        return run.step.body(b)

    report = {"sets": args.sets, "activities": [a.name for a in activities],
              "shape_rows": int(batch.input_ids.shape[0]),
              "compile": run.stats["compile"], "bf16": run.bf16, "cuda_graphs": len(run.step.graphs),
              "capture": run.stats["cuda_graphs"] or "CUDA graphs are GPU only"}
    for name, step in (("eager", eager), ("replayed", run.step)):
        if name == "replayed" and not run.step.graphs:
            continue
        seconds, prof = measured(step, 3)
        events = prof.events()
        device_events = [e for e in events if e.device_type.name == "CUDA"]
        averages = {e.key: e for e in prof.key_averages()}
        report[name] = {
            "ms_per_step": round(1000 * seconds, 3),
            "device_kernels_per_step": len(device_events) / 3,
            "cpu_ops_per_step": sum(1 for e in events
                                    if e.device_type.name == "CPU" and e.name.startswith("aten::")) / 3,
            "graph_launches_per_step": sum(1 for e in events if e.name == "cudaGraphLaunch") / 3,
            "regions_ms_per_step": {r: {"cpu": round(averages[r].cpu_time_total / 3e3, 3),
                                        "device": round(_device_time(averages[r]) / 3e3, 3)}
                                    for r in REGIONS if r in averages},
            "top": _table(prof, gpu),
        }
    return report


def _table(prof, gpu: bool) -> list[str]:
    """The 15 ops or kernels that took most time (device time on a GPU; the key's name differs across torch)."""
    for key in (("self_device_time_total", "self_cuda_time_total") if gpu else ("self_cpu_time_total",)):
        try:
            return prof.key_averages().table(sort_by=key, row_limit=15).splitlines()
        except (AttributeError, KeyError, ValueError):
            continue
    return []


def attempt(measure) -> dict:
    """One step's record; an exception (a compiler failure on this GPU, say) is recorded, not fatal."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - the script must write its summary whatever failed
        import traceback

        traceback.print_exc()
        return {"error": repr(exc)[:3000]}


def _device_time(event) -> float:
    return getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0.0)


def data_options(args) -> list[str]:
    options = ["--max-train-samples", str(args.train_sentences)] if args.train_sentences else []
    return options + [a for key, value in (TINY if args.tiny else {}).items()
                      for a in ("--model-override", f"{key}={value}")]


def skipped(left: float) -> dict:
    return {"skipped": f"time budget ({left:.0f} s left)"}


def write(path: Path, payload: dict) -> None:
    from modernbert_glue.outputs import write_json

    write_json(path, payload)


if __name__ == "__main__":
    main()
