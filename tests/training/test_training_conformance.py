"""One official training iteration (stylegan2-ada-pytorch's training_loop.py, batch_idx 0: Gmain, Greg, Dmain,
Dreg, then G_ema), reproduced by our Trainer from the same weights, reals, latents and path-length noise
(shared/conformance/train_step.pt; its README section says what each key is).

The Trainer runs its own phases and loss; the test only injects the official inputs (latents, noise) and
watches each phase's optimizer step: there it compares our gradients with the official ones, then steps our
optimizer on the official gradients and compares the weights (Adam's first step moves a weight by about
lr * sign(grad), so weights from independently computed gradients cannot be compared element-wise).

One fake image of this data has a pixel whose pre-activation in D's first layer (b32.fromrgb) is 7e-8, within
fp32 rounding of zero: which slope of lrelu it takes depends on the order of the additions (ours folds the gain
and bias into the convolution; the official code adds them after), and it moves Dmain's gradient of that
layer by 7e-4 of its magnitude in that pixel's channel. The test allows exactly that: a first-layer gradient
may differ only in the channels of such ties. Every other value agrees to 2e-6.
"""

import json

import pytest
import torch
from conformance_data import require_conformance
from PIL import Image

from styleforge.data.build import build_dataset
from styleforge.official.names import convert_official_state_dict, official_name_to_ours
from styleforge.training.loop import Trainer
from styleforge.training.report import TickStats

DATA = require_conformance()
TOL = 1e-4  # of each tensor's largest magnitude


def assert_matches(ours: torch.Tensor, official: torch.Tensor, what: str) -> None:
    ours, official = ours.detach().reshape(official.shape).double(), official.double()
    scale = official.abs().max().clamp(min=1e-12)
    error = ((ours - official).abs().max() / scale).item()
    assert error < TOL, f"{what}: off by {error:.2e} of its largest magnitude {scale.item():.3e}"


@pytest.fixture(scope="module")
def official():
    return torch.load(DATA / "train_step.pt", weights_only=True), json.loads((DATA / "train_step.json").read_text())


@pytest.fixture(scope="module")
def iteration(official, tmp_path_factory):
    """Our Trainer through the official first iteration; what it computed, phase by phase."""
    data, settings = official
    cfg = settings["config"]
    folder = tmp_path_factory.mktemp("reals")
    # The data set only tells the Trainer the resolution and channels; the official reals are fed directly.
    for i, img in enumerate(data["reals"]):
        pixels = ((img.permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    dataset = tmp_path_factory.mktemp("data") / "reals.zip"
    build_dataset(str(folder), dataset)
    trainer = Trainer(dict(
        data=str(dataset), outdir=str(tmp_path_factory.mktemp("runs")), cfg="stylegan2", workers=0,
        z_dim=cfg["z_dim"], w_dim=cfg["w_dim"], map_layers=cfg["map_layers"], cbase=cfg["channel_base"],
        cmax=cfg["channel_max"], batch=cfg["batch"], mbstd_group=cfg["mbstd_group"], glr=cfg["lr"], dlr=cfg["lr"],
        betas=tuple(cfg["betas"]), eps=cfg["eps"], gamma=cfg["r1_gamma"], pl_weight=cfg["pl_weight"],
        pl_batch_shrink=cfg["pl_batch_shrink"], pl_decay=cfg["pl_decay"], style_mixing=cfg["style_mixing"],
        pl_interval=cfg["G_reg_interval"], r1_interval=cfg["D_reg_interval"], ema_kimg=cfg["ema_kimg"],
        ema_rampup=cfg["ema_rampup"] or 0.0, g_arch=cfg["g_arch"], d_arch=cfg["d_arch"],
        g_kwargs={"synthesis_kwargs": {"use_noise": cfg["use_noise"]}},
    ), quiet=True)
    for net, key in ((trainer.G, "G"), (trainer.D, "D"), (trainer.G_ema, "G")):
        net.load_state_dict(convert_official_state_dict(data["init"][key], key))

    # The official inputs: the latents of each phase and the path-length noise.
    names = [phase.name for phase in trainer.phases]
    trainer.latents = lambda phase_idx, chunk: (data["gen_z"][names[phase_idx]], torch.zeros([cfg["batch"], 0]))
    (path_length,) = [r for r in trainer.loss.regularizers if type(r).__name__ == "PathLength"]
    path_length.noise = lambda img: data["pl_noise"]

    seen = {}  # phase -> what we computed
    current = []  # the phase being run
    accumulate = trainer.loss.accumulate_gradients

    def recording_accumulate(phase, *args, **kwargs):
        current[:] = [next(p for p in trainer.phases if p.name == phase)]
        stats = accumulate(phase, *args, **kwargs)
        seen[phase] = {"stats": stats, "gain": kwargs["gain"]}
        return stats

    def stepping_on_official_gradients(step):
        (phase,) = current
        kind, record = phase.name[0], seen[phase.name]
        record["grads"] = {n: p.grad.clone() for n, p in phase.module.named_parameters() if p.grad is not None}
        record["pl_mean"] = path_length.pl_mean.clone()
        params = dict(phase.module.named_parameters())
        for name, grad in data["phases"][phase.name]["grads"].items():
            params[official_name_to_ours(name, kind)].grad = grad.clone()
        group = phase.opt.param_groups[0]
        record["adam"] = dict(lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1], eps=group["eps"])
        step()
        record["weights"] = {n: v.clone() for n, v in phase.module.state_dict().items()}

    trainer.loss.accumulate_gradients = recording_accumulate
    for opt in (trainer.opt_G, trainer.opt_D):
        opt.step = lambda step=opt.step: stepping_on_official_gradients(step)
    # D's first layer's pre-activations in each phase (where rounding ties are looked for).
    trainer.D.b32.fromrgb.register_forward_hook(lambda layer, args, out: seen.setdefault("first_layer", {})
                                                .setdefault(current[0].name, []).append(pre_activation(layer, args[0])))
    seen["ema_beta"] = trainer.ema_beta()
    trainer.train_step([(data["reals"], torch.zeros([cfg["batch"], 0]))], TickStats())
    return trainer, seen


def pre_activation(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv layer's conv + bias, in float64."""
    w = (layer.weight * layer.weight_gain).detach().double()
    return torch.nn.functional.conv2d(x.detach().double(), w) + layer.bias.detach().double()[None, :, None, None]


def tie_channels(pre_activations: list[torch.Tensor]) -> set[int]:
    """Channels where a pre-activation lies within fp32 rounding of zero (relative to the layer's largest), so
    that lrelu's slope there depends on the order of the additions."""
    return {c for pre in pre_activations for c in torch.nonzero(pre.abs() < 1e-7 * pre.abs().amax())[:, 1].tolist()}


PHASES = ["Gmain", "Greg", "Dmain", "Dreg"]


@pytest.mark.parametrize("phase", PHASES)
def test_every_reported_value_matches(official, iteration, phase):
    data, _ = official
    _, seen = iteration
    expected = data["phases"][phase]["stats"]
    ours = seen[phase]["stats"]
    assert set(expected) <= set(ours), f"not reported: {sorted(set(expected) - set(ours))}"
    for name, value in expected.items():
        assert_matches(ours[name], value, f"{phase} {name}")


@pytest.mark.parametrize("phase", PHASES)
def test_every_gradient_matches(official, iteration, phase):
    data, _ = official
    _, seen = iteration
    kind = phase[0]
    expected = {official_name_to_ours(n, kind): g for n, g in data["phases"][phase]["grads"].items()}
    ours = seen[phase]["grads"]
    assert set(ours) == set(expected)
    ties = tie_channels(seen["first_layer"].get(phase, []))
    for name, grad in expected.items():
        if name.startswith("b32.fromrgb.") and ties:  # exact but for the channels of rounding ties
            others = [c for c in range(grad.shape[0]) if c not in ties]
            assert_matches(ours[name][others], grad[others], f"{phase} gradient of {name} (channels without ties)")
            continue
        assert_matches(ours[name], grad, f"{phase} gradient of {name}")


@pytest.mark.parametrize("phase", PHASES)
def test_optimizer_settings_and_gain_match(official, iteration, phase):
    _, settings = official
    _, seen = iteration
    expected = settings["adam"][phase]
    assert seen[phase]["gain"] == expected["gain"]
    for key in ("lr", "beta1", "beta2", "eps"):
        assert seen[phase]["adam"][key] == pytest.approx(expected[key], rel=1e-12), key


@pytest.mark.parametrize("phase", PHASES)
def test_our_optimizer_on_the_official_gradients_gives_the_official_weights(official, iteration, phase):
    data, _ = official
    _, seen = iteration
    kind = phase[0]
    for name, value in convert_official_state_dict(data["phases"][phase]["weights_after"], kind).items():
        assert_matches(seen[phase]["weights"][name], value, f"{phase} weight {name}")


def test_ema_pl_mean_and_w_avg_after_the_iteration(official, iteration):
    data, settings = official
    trainer, seen = iteration
    assert seen["ema_beta"] == pytest.approx(settings["ema_beta"], rel=1e-12)
    assert_matches(seen["Dmain"]["pl_mean"], data["pl_mean_after_Greg"], "pl_mean")
    assert_matches(trainer.G.mapping.w_avg, data["w_avg_after"], "w_avg")
    G_ema = trainer.G_ema.state_dict()
    for name, value in convert_official_state_dict(data["G_ema_after"], "G").items():
        assert_matches(G_ema[name], value, f"G_ema {name}")
