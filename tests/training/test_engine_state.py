"""The engine's checkpoints (training/engine_state.py): written by the background writer, complete last, restored
in place (the learning-rate tensor a captured step reads stays the same object); best and early stopping as the
Trainer's."""

import time

import pytest
import torch

from modernbert_glue.config import TrainConfig
from modernbert_glue.training.checkpoints import complete, latest_checkpoint, resume_checkpoint
from modernbert_glue.training.ema import EMA
from modernbert_glue.training.engine_state import LoopState, Writer, load, snapshot
from modernbert_glue.training.step import build_optimizer


def _objects(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    optimizer, schedule = build_optimizer(model, TrainConfig(warmup_ratio=0.2), 10, torch.device("cpu"))
    return model, optimizer, schedule


def test_a_checkpoint_restores_weights_optimizer_schedule_ema_and_counters(tmp_path):
    model, optimizer, schedule = _objects(0)
    ema = EMA(0.9)
    ema.start(model)
    losses = torch.zeros(10)
    for step in range(3):
        loss = model(torch.randn(5, 4)).logsumexp(-1).mean()
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        ema.update(model, step + 1)
        losses[step] = loss.detach()
    state = LoopState(step=3, best_metric=0.5, best_step=2, log_history=[{"loss": 1.0, "step": 3}])
    folder = tmp_path / "checkpoints" / "checkpoint-3"
    writer = Writer(background=True)
    writer.submit(folder, snapshot(model, optimizer, schedule, ema, state, losses), best=None)
    writer.wait()
    assert latest_checkpoint(tmp_path) == folder and (folder / "complete").read_text().startswith("3\n")

    fresh, fresh_optimizer, fresh_schedule = _objects(1)
    lr = fresh_optimizer.param_groups[0]["lr"]
    fresh_ema, fresh_losses = EMA(0.9), torch.zeros(10)
    restored = load(folder, fresh, fresh_optimizer, fresh_schedule, fresh_ema, fresh_losses)
    assert restored == state and torch.equal(fresh_losses, losses)
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(fresh_ema.shadow, ema.shadow))
    assert fresh_schedule.last_epoch == schedule.last_epoch == 3
    assert all(group["lr"] is lr for group in fresh_optimizer.param_groups)  # the same tensor, the saved value
    assert float(lr) == float(optimizer.param_groups[0]["lr"])
    for p, q in zip(fresh.parameters(), model.parameters()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(fresh_optimizer.state[p][key], optimizer.state[q][key])


def test_best_and_early_stopping_as_the_trainers():
    state = LoopState()
    outcomes = []
    for step, accuracy in ((1, 0.6), (2, 0.7), (3, 0.7), (4, 0.65), (5, 0.8)):
        state.step = step
        outcomes.append(state.judge(accuracy, patience=3))
    assert outcomes == [(True, False), (True, False), (False, False), (False, False), (True, False)]
    assert (state.best_metric, state.best_step) == (0.8, 5)
    state.step = 6
    assert state.judge(0.8, patience=1) == (False, True)  # a tie is not better
    assert state.judge(0.1, patience=0) == (False, False)  # no early stopping


def test_the_background_writer_queues_checkpoints_in_order_and_waits_only_when_full(monkeypatch, tmp_path):
    """The step loop does not wait for a write in progress: `max_pending` snapshots queue, the next submit
    waits for a place, the writes keep their order, and a failed write is raised in the caller."""
    import threading

    from modernbert_glue.training import engine_state

    release, written = threading.Event(), []

    def slow_write(folder, snap, best):
        release.wait(timeout=30)  # a disk slower than the steps
        if snap == "bad":
            raise OSError(f"{folder}: No space left on device")
        written.append(folder.name)

    monkeypatch.setattr(engine_state, "write", slow_write)
    writer = Writer(background=True, max_pending=2)
    writer.submit(tmp_path / "a", "snap", None)
    writer.submit(tmp_path / "b", "snap", None)
    assert written == [] and writer.blocked_seconds < 5  # both queued, neither written, no wait
    threading.Timer(0.3, release.set).start()
    writer.submit(tmp_path / "c", "snap", None)  # full: waits until the first write is done
    assert writer.blocked_seconds > 0 and written[:1] == ["a"]  # it returned only once "a" was written
    writer.wait()
    assert written == ["a", "b", "c"] and not writer.pending

    release.clear()  # the failing write waits until after submit returns, so that wait() is what raises
    writer.submit(tmp_path / "d", "bad", None)
    release.set()
    with pytest.raises(OSError) as raised:
        writer.wait()
    assert str(raised.value) == f"{tmp_path / 'd'}: No space left on device"
    writer.wait()  # raised once; the writer is usable again

    release.clear()  # at the end of a run: only the write in progress is waited for
    writer = Writer(background=True, max_pending=4)
    for name in "efg":
        writer.submit(tmp_path / name, "snap", None)
    while not writer.pending or writer.thread is None:
        time.sleep(0.01)
    threading.Timer(0.3, release.set).start()
    assert writer.wait(drop_queued=True) == 2
    assert written[-1] == "e" and "f" not in written and "g" not in written and not writer.pending


def test_a_damaged_checkpoint_is_passed_over_for_the_one_before(tmp_path):
    """A file cut short after its checkpoint was completed (a full disk, a bad copy): resuming takes the
    previous intact checkpoint instead of failing halfway through loading."""
    folders = [tmp_path / "checkpoints" / f"checkpoint-{step}" for step in (5, 10)]
    for step, folder in zip((5, 10), folders):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"w" * 1000)
        (folder / "ema").mkdir()
        (folder / "ema" / "state.pt").write_bytes(b"e" * 10)
        complete(folder, step, best=folders[0])
    assert latest_checkpoint(tmp_path) == folders[1] and "model.safetensors\t1000" in (folders[1] / "complete").read_text()
    (folders[1] / "model.safetensors").write_bytes(b"w" * 500)
    assert latest_checkpoint(tmp_path) == folders[0]
    (folders[0] / "ema" / "state.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path) is None  # nothing intact: the run starts over
    (folders[0] / "complete").write_text("5\n")  # an older version's complete file: no sizes, trusted
    assert latest_checkpoint(tmp_path) == folders[0]


def test_a_checkpoint_damaged_in_place_is_passed_over_on_resume(tmp_path, caplog):
    """Bytes overwritten without changing a file's size passed the size check, then failed halfway through
    loading (a JSON, safetensors or torch traceback): --resume takes the checkpoint before it."""
    import json

    import torch
    from safetensors.torch import save_file

    folders = [tmp_path / "checkpoints" / f"checkpoint-{step}" for step in (5, 10)]
    for step, folder in zip((5, 10), folders):
        folder.mkdir(parents=True)
        save_file({"w": torch.ones(256)}, str(folder / "model.safetensors"))
        torch.save({"state": {0: {"exp_avg": torch.arange(4096.0)}}}, folder / "optimizer.pt")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        complete(folder, step, best=folders[0])
    assert resume_checkpoint(tmp_path) == folders[1]

    def overwrite(path, at: int, data: bytes):
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(data)

    size = (folders[1] / "optimizer.pt").stat().st_size
    overwrite(folders[1] / "optimizer.pt", size // 2, b"\xab" * 64)  # inside the tensor's bytes
    assert latest_checkpoint(tmp_path) == folders[1]  # same sizes: complete and intact
    assert resume_checkpoint(tmp_path) == folders[0]
    assert "checkpoint-10 cannot be read back (optimizer.pt: " in caplog.text and "fails its CRC" in caplog.text
    for name, data in (("trainer_state.json", b"x"), ("model.safetensors", b"\0" * 8)):
        damaged = tmp_path / "checkpoints" / "checkpoint-5"
        kept = damaged / f"{name}.kept"
        kept.write_bytes((damaged / name).read_bytes())
        overwrite(damaged / name, 0, data)
        assert resume_checkpoint(tmp_path) is None, name  # nothing readable: the run starts over
        (damaged / name).write_bytes(kept.read_bytes())
        kept.unlink()


def test_a_checkpoint_records_the_training_seconds_so_far_and_a_resume_adds_its_own(tmp_path):
    """checkpoints.TrainClock: a checkpoint's train_seconds.json is the time before it; one an older version wrote
    (no such file), or a damaged one, is unknown (None), and so is every later total, while the checkpoint is still
    resumed from (a damaged file threw away intact weights); no checkpoint is a fresh start (0)."""
    from modernbert_glue.training.checkpoints import SECONDS, TrainClock, checkpoint_seconds

    folder = tmp_path / "checkpoints" / "checkpoint-5"
    folder.mkdir(parents=True)
    complete(folder, 5, best=None, seconds=12.3456)
    assert checkpoint_seconds(folder) == 12.346 and f"{SECONDS}\t" not in (folder / "complete").read_text()
    clock = TrainClock(folder)
    assert clock.launch() == 0.0 and clock.so_far() == 12.346  # not started: nothing of this launch yet
    clock.start()
    assert 12.346 <= clock.so_far() < 13 and TrainClock(None).before == 0.0
    for damaged in ("", "[1]", '{"train_seconds": -1}', '{"train_seconds": "x"}', '{"train_seconds": NaN}',
                    '{"train_seconds": true}', '{"train_seconds": 4.775,'):
        (folder / SECONDS).write_text(damaged)
        assert checkpoint_seconds(folder) is None, damaged
        assert resume_checkpoint(tmp_path) == folder  # the checkpoint itself is intact: resumed, its time unknown
    (folder / SECONDS).unlink()
    assert TrainClock(folder).so_far() is None
    complete(folder, 5, best=None)  # no clock (seconds None): no file
    assert not (folder / SECONDS).exists()
