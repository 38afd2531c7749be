"""EqGAN-SA's alignment loss: D's Grad-CAM attention on fakes against G's heatmaps, in G's step only."""

import torch
import torch.nn.functional as F
from tiny import tiny_network

from styleforge.losses.alignment import (
    Alignment,
    AttentionAlignment,
    alignment_error,
    block_outputs,
    grad_cam_weights,
)
from styleforge.losses.logistic import LogisticLoss
from styleforge.networks.heatmaps import random_heatmaps

RES = 32


def nets(use_sel=True):
    torch.manual_seed(0)
    G = tiny_network("G", img_resolution=RES, channel_max=8, use_sel=use_sel)
    D = tiny_network("D", img_resolution=RES, channel_max=8)
    return G, D


def cams_of_fakes(G, D, heatmaps):
    """The G step's forward with D's features recorded; (alignment, fake, features)."""
    alignment = AttentionAlignment(D)
    img = G(torch.randn(4, 8), None, heatmap=heatmaps)
    with alignment.watch() as features:
        D(img, None)
    return alignment, img, features


def test_features_of_the_4_8_16_blocks_are_recorded():
    G, D = nets()
    with block_outputs(D) as features:
        D(torch.randn(2, 3, RES, RES))
    assert {s: tuple(f.shape[1:]) for s, f in features.items()} == {4: (8, 4, 4), 8: (8, 8, 8), 16: (8, 16, 16)}
    assert not D.b8._forward_hooks  # hooks removed on exit


def test_cam_weights_are_the_spatial_mean_of_the_G_loss_gradient_and_touch_no_weights():
    G, D = nets()
    D.requires_grad_(True)  # even when D could take gradient
    img = torch.randn(3, 3, RES, RES)
    weights = grad_cam_weights(D, img, None)
    assert all(p.grad is None for p in D.parameters())
    # Independent computation: retain the block outputs' gradients in a plain backward pass.
    D.eval()
    with block_outputs(D) as features:
        logits = D(img.clone().requires_grad_(True))
    for f in features.values():
        f.retain_grad()
    F.softplus(-logits).sum().backward()
    for size, w in weights.items():
        torch.testing.assert_close(w, features[size].grad.mean(dim=[2, 3], keepdim=True))
    for training in (True, False):  # D's mode is restored
        D.train(training)
        grad_cam_weights(D, img, None)
        assert D.training == training


def test_cam_lies_in_unit_interval_and_gives_gradient_to_G_but_not_to_D():
    G, D = nets()
    G.requires_grad_(True)
    D.requires_grad_(False)  # G's step: D frozen
    heatmaps = random_heatmaps(4, RES)
    alignment, img, features = cams_of_fakes(G, D, heatmaps)
    cams = alignment.cams(img, None, features)
    assert sorted(cams) == [1, 2, 3]
    for cam in cams.values():
        assert cam.shape == (4, 1, RES, RES) and cam.min() >= 0 and cam.max() <= 1
        assert torch.allclose(cam.amax(dim=[2, 3]), torch.ones(4))
    sum(c.sum() for c in cams.values()).backward()
    g_grads = [p.grad for p in G.synthesis.parameters() if p.grad is not None]
    assert g_grads and sum(g.abs().sum() for g in g_grads) > 0
    assert all(p.grad is None for p in D.parameters())


def test_alignment_loss_is_zero_when_the_heatmaps_equal_the_cams_and_positive_otherwise():
    G, D = nets()
    heatmaps = random_heatmaps(4, RES)
    alignment, img, features = cams_of_fakes(G, D, heatmaps)
    assert alignment(img, None, features, heatmaps) > 0
    cams = alignment.cams(img, None, features)
    # Level 1 is compared as is; levels 2 and 3 after averaging over their centres (and normalizing).
    equal = [cams[1], cams[2].expand(-1, 2, -1, -1), cams[3].expand(-1, 4, -1, -1)]
    assert alignment(img, None, features, equal) == 0


def test_error_takes_the_mean_above_the_threshold_when_more_than_one_element_is_above():
    target = torch.zeros(1, 1, 2, 2)
    cam = torch.tensor([0.1, 0.5, 0.7, 0.2]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(alignment_error(cam, target), torch.tensor(0.6))  # mean of 0.5, 0.7
    cam = torch.tensor([0.1, 0.5, 0.2, 0.2]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(alignment_error(cam, target), torch.tensor(0.25))  # one above: mean of all


def test_G_step_adds_the_alignment_loss_and_D_steps_do_not():
    G, D = nets()
    loss = LogisticLoss(G, D, regularizers=[Alignment(1.0)], style_mixing=0)
    c = torch.zeros(4, 0)
    G.requires_grad_(True)
    D.requires_grad_(False)
    stats = loss.accumulate_gradients("Gmain", torch.randn(4, 3, RES, RES), c, torch.randn(4, 8), c, gain=1.0)
    assert stats["Loss/G/align"] > 0
    assert all(p.grad is None for p in D.parameters())
    assert G.synthesis.heatmap_encoder.levels[0].conv0.weight.grad.abs().sum() > 0  # the heatmaps matter to G
    G.requires_grad_(False)
    D.requires_grad_(True)
    stats = loss.accumulate_gradients("Dboth", torch.randn(4, 3, RES, RES), c, torch.randn(4, 8), c, gain=1.0)
    assert "Loss/G/align" not in stats


def test_a_16px_D_aligns_the_levels_it_has():
    torch.manual_seed(0)
    G = tiny_network("G", channel_base=64, channel_max=8, use_sel=True)
    D = tiny_network("D", channel_base=64, channel_max=8)
    alignment = AttentionAlignment(D)
    img = G(torch.randn(2, 8), None)
    with alignment.watch() as features:
        D(img, None)
    assert sorted(alignment.cams(img, None, features)) == [1, 2]
