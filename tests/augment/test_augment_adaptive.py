"""The adaptive p controller: direction, step size, clamping, interval and checkpoint state."""

import pytest
import torch

from styleforge.augment import AdaptiveAugment, AdaptiveP
from styleforge.errors import UserError

BATCH = 32
STEP = BATCH * 4 / (500 * 1000)  # batch * interval / (speed_kimg * 1000)


def run_interval(ada: AdaptiveP, logits: torch.Tensor) -> None:
    for _ in range(ada.interval):
        assert not ada.ready
        ada.accumulate(logits)
    assert ada.ready


def test_p_rises_when_d_overfits_and_falls_otherwise():
    ada = AdaptiveP(target=0.6)
    overfit = torch.tensor([[3.0]] * 28 + [[-1.0]] * 4)  # r_t = (28 - 4) / 32 = 0.75 > 0.6
    run_interval(ada, overfit)
    p = ada.update(0.1, BATCH)
    assert p == pytest.approx(0.1 + STEP) and ada.last_rt == pytest.approx(0.75) and not ada.ready
    healthy = torch.tensor([[1.0]] * 16 + [[-2.0]] * 16)  # r_t = 0
    run_interval(ada, healthy)
    assert ada.update(p, BATCH) == pytest.approx(0.1) and ada.last_rt == 0


def test_p_is_clamped_at_zero_and_holds_at_target():
    ada = AdaptiveP(target=0.5)
    run_interval(ada, -torch.ones(BATCH, 1))
    assert ada.update(STEP / 2, BATCH) == 0.0
    run_interval(ada, torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5 = target
    assert ada.update(0.3, BATCH) == 0.3
    assert ada.update(0.3, BATCH) == 0.3  # nothing accumulated: unchanged


def test_stats_are_a_summable_tensor_and_state_round_trips():
    ada = AdaptiveP(target=0.6, speed_kimg=100, interval=2)
    ada.accumulate(torch.tensor([2.0, -1.0, 0.5]))
    assert torch.equal(ada.stats, torch.tensor([1.0, 3.0]))
    ada.stats *= 2  # what an all_reduce over two identical ranks does
    restored = AdaptiveP(target=0.6, speed_kimg=100, interval=2)
    restored.load_state_dict(ada.state_dict())
    assert all(isinstance(v, float) for v in ada.state_dict().values())
    restored.accumulate(torch.tensor([1.0, 1.0]))
    assert restored.ready
    p = restored.update(0.0, 64)
    assert restored.last_rt == pytest.approx(4 / 8) and p == 0.0  # 0.5 < 0.6: down, clamped
    assert AdaptiveP().state_dict().keys() == {"signs_sum", "signs_count", "num_steps"}
    assert restored.state_dict()["last_rt"] == 0.5


def test_drives_the_augmentation_probability():
    aug, ada = AdaptiveAugment(p=0.0), AdaptiveP()
    for _ in range(10):
        run_interval(ada, torch.ones(BATCH, 1))
        aug.p = ada.update(aug.p, BATCH)
    assert aug.p == pytest.approx(10 * STEP)


def test_bad_settings_are_user_errors():
    for kwargs in [dict(target=1.5), dict(speed_kimg=0), dict(interval=0)]:
        with pytest.raises(UserError):
            AdaptiveP(**kwargs)
