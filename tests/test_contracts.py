"""The contract of every registered component, parametrized over the registries' names: a component added to
a registry is tested here without a case of its own (and one that cannot be built generically fails here).

- networks: built from a NetworkSpec, the interface the tools rely on, gradients (twice for D: R1), a
  save/load round trip, the same weights for the same seed;
- augmentations: built from the config, shape and dtype kept, reproducible under a seed, differentiable;
- losses: G's and D's phases give finite statistics and gradients to their own network only.
"""

import dataclasses

import pytest
import torch
from registered import builtin_names
from tiny import TINY_SPEC

import styleforge.augment  # noqa: F401  (registers the components)
import styleforge.losses  # noqa: F401
import styleforge.networks  # noqa: F401
from styleforge.networks.persistence import load_network, save_network
from styleforge.networks.spec import NetworkSpec, build_network
from styleforge.registry import AUGMENTATIONS, DISCRIMINATORS, GENERATORS, LOSSES
from styleforge.training.config import TrainConfig

RES = 16


def spec(c_dim: int = 0) -> NetworkSpec:
    return dataclasses.replace(TINY_SPEC, c_dim=c_dim, channel_base=64, channel_max=8, mbstd_group_size=2)


def seeded_build(registry, name: str, c_dim: int) -> tuple[type, torch.nn.Module]:
    torch.manual_seed(1)
    cls = registry.get(name)
    return cls, build_network(cls, spec(c_dim))


def onehot(n: int, c_dim: int) -> torch.Tensor:
    return torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else torch.zeros([n, 0])


@pytest.mark.parametrize("c_dim", [0, 4])
@pytest.mark.parametrize("name", builtin_names(GENERATORS))
def test_generator_contract(name, c_dim, tmp_path):
    cls, G = seeded_build(GENERATORS, name, c_dim)
    for attr, value in dict(z_dim=8, c_dim=c_dim, img_resolution=RES, img_channels=3).items():
        assert getattr(G, attr) == value, attr
    z, c = torch.randn([4, G.z_dim]), onehot(4, c_dim)
    ws = G.mapping(z, c)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (4, 3, RES, RES) and torch.isfinite(img).all()
    img.square().mean().backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0
    # Save/load: the same network, the same images.
    save_network(G, tmp_path / "G.safetensors")
    loaded = load_network(tmp_path / "G.safetensors")
    G.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, c, noise_mode="const"), G(z, c, noise_mode="const"))
    # The same seed builds the same weights; another seed other weights.
    weights = list(G.state_dict().values())
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(build_network(cls, spec(c_dim)).state_dict().values(), weights))
    torch.manual_seed(2)
    assert any(not torch.equal(a, b) for a, b in zip(build_network(cls, spec(c_dim)).state_dict().values(), weights))


@pytest.mark.parametrize("c_dim", [0, 4])
@pytest.mark.parametrize("name", builtin_names(DISCRIMINATORS))
def test_discriminator_contract(name, c_dim, tmp_path):
    cls, D = seeded_build(DISCRIMINATORS, name, c_dim)
    img, c = torch.randn([4, 3, RES, RES], requires_grad=True), onehot(4, c_dim)
    logits = D(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), img, create_graph=True)  # R1 differentiates twice
    assert grad.abs().sum() > 0
    grad.square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    save_network(D, tmp_path / "D.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(load_network(tmp_path / "D.safetensors")(img, c), D(img, c))
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(build_network(cls, spec(c_dim)).state_dict().values(),
                                                  D.state_dict().values()))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", builtin_names(AUGMENTATIONS))
def test_augmentation_contract(name, channels):
    cfg = dataclasses.replace(TrainConfig(), aug=name, aug_p=0.5 if name == "ada" else None)
    aug = AUGMENTATIONS.get(name).from_config(cfg)
    x = (torch.rand(4, channels, RES, RES) * 2 - 1).requires_grad_()
    torch.manual_seed(0)
    y = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), y) and y.shape == x.shape and y.dtype == x.dtype
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert aug.state_dict() == {}  # constants only: the training state goes through training_state()
    aug.load_training_state(aug.training_state())


@pytest.mark.parametrize("name", builtin_names(LOSSES))
def test_loss_contract(name):
    cls = LOSSES.get(name)
    g_name, d_name = next((g, d) for g in builtin_names(GENERATORS) for d in builtin_names(DISCRIMINATORS)
                          if cls.incompatibility(TrainConfig(loss=name, g=g, d=d, aug="none"), GENERATORS.get(g),
                                                 DISCRIMINATORS.get(d)) is None)
    G, D = build_network(GENERATORS.get(g_name), spec()), build_network(DISCRIMINATORS.get(d_name), spec())
    loss = cls(G, D, style_mixing=0.5)
    real, c, z = torch.rand(4, 3, RES, RES) * 2 - 1, torch.zeros(4, 0), torch.randn(4, 8)
    for phase, trained, frozen in (("Gmain", G, D), ("Dmain", D, G)):
        trained.requires_grad_(True)
        frozen.requires_grad_(False)
        stats = loss.accumulate_gradients(phase, real, c, z, c, gain=1.0)
        assert stats and all(torch.isfinite(v).all() for v in stats.values()), phase
        assert any(p.grad is not None for p in trained.parameters()), phase
        assert all(p.grad is None for p in frozen.parameters()), phase
        loss.phase_done(phase, lambda t: t)
        trained.zero_grad(set_to_none=True)
