from types import SimpleNamespace

import torch
from transformers import TrainerControl

from modernbert_glue.training.ema import EMACallback


def test_ema_weights_are_evaluated_and_saved_then_training_resumes_live():
    model = torch.nn.Linear(2, 1)
    cb = EMACallback(decay=0.5)
    state, control = SimpleNamespace(global_step=0), TrainerControl()
    cb.on_train_begin(None, state, control, model=model)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)  # one "optimizer step"
    state.global_step = 100
    cb.on_step_end(None, state, control, model=model)  # no evaluation due: live weights stay
    assert torch.allclose(model.weight, start + 1.0)
    assert torch.allclose(cb.shadow[0], start + 0.5)  # decay 0.5: halfway
    control.should_evaluate = control.should_save = True
    cb.on_step_end(None, state, control, model=model)  # shadow -> start + 0.75, swapped in
    assert torch.allclose(model.weight, start + 0.75)
    cb.on_evaluate(None, state, control, model=model)  # a checkpoint follows: keep EMA weights for it
    assert torch.allclose(model.weight, start + 0.75)
    cb.on_save(None, state, control, model=model)
    assert torch.allclose(model.weight, start + 1.0)  # training continues from the live weights


def test_ema_weights_stay_at_the_end_of_training():
    model = torch.nn.Linear(2, 1)
    cb = EMACallback(decay=0.5)
    state, control = SimpleNamespace(global_step=50), TrainerControl()
    cb.on_train_begin(None, state, control, model=model)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    control.should_training_stop = control.should_save = True
    cb.on_step_end(None, state, control, model=model)
    cb.on_save(None, state, control, model=model)
    assert torch.allclose(model.weight, start + 1.0)  # the final model is the average
