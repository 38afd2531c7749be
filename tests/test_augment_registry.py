"""Contract of every registered augmentation: built by name, same shape and dtype, reproducible under
torch.manual_seed, differentiable w.r.t. the images."""

import pytest
import torch

import styleforge.augment  # noqa: F401 (registers the augmentations)
from styleforge.registry import AUGMENTATIONS

CASES = {"none": {}, "diffaug": {}, "ada": {"p": 0.5}}


def test_all_expected_names_are_registered():
    assert set(CASES) <= set(AUGMENTATIONS.names())


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("channels", [1, 3])
def test_contract(name, channels):
    aug = AUGMENTATIONS.create(name, **CASES[name])
    assert isinstance(aug, torch.nn.Module)
    x = (torch.rand(4, channels, 16, 16) * 2 - 1).requires_grad_()
    torch.manual_seed(0)
    y = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), y) and y.shape == x.shape and y.dtype == x.dtype
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert aug.state_dict() == {}  # constants only: nothing for a checkpoint to carry
