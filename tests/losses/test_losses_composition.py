"""Every registered loss with every registered regularizer: it trains, with the regularizer's penalty in
stats.jsonl, or the config is refused with one line naming both options. A new loss or regularizer is
covered here without a test of its own: the networks are the first registered pair the loss accepts."""

import itertools
import json

import pytest
from registered import builtin_names

import styleforge.losses  # noqa: F401  (registers losses and regularizers)
import styleforge.networks  # noqa: F401
from styleforge.errors import UserError
from styleforge.registry import DISCRIMINATORS, GENERATORS, LOSSES, REGULARIZERS
from styleforge.training.config import TrainConfig, option
from styleforge.training.loop import Trainer

PAIRS = list(itertools.product(builtin_names(LOSSES), builtin_names(REGULARIZERS)))


def networks_for(loss: str) -> tuple[str, str]:
    """The first registered (G, D), StyleGAN2's first, that the loss trains with."""
    names = lambda registry: sorted(registry.names(), key=lambda n: n != "stylegan2")  # noqa: E731
    cfg = TrainConfig(loss=loss, aug="none")
    for g, d in itertools.product(names(GENERATORS), names(DISCRIMINATORS)):
        cfg.g, cfg.d = g, d
        if LOSSES.get(loss).incompatibility(cfg, GENERATORS.get(g), DISCRIMINATORS.get(d)) is None:
            return g, d
    raise AssertionError(f"no registered networks train with --loss {loss}")


@pytest.mark.parametrize("loss, regularizer", PAIRS)
def test_every_loss_with_every_regularizer_trains_or_is_refused(digits, tiny_options, loss, regularizer):
    reg = REGULARIZERS.get(regularizer)
    g, d = networks_for(loss)
    # Only this regularizer: the others off (the loss's own defaults too).
    weights = {REGULARIZERS.get(name).option: 0.0 for name in builtin_names(REGULARIZERS)}
    options = {**tiny_options, "data": digits(16), "loss": loss, "g": g, "d": d, "kimg": 0.004,
               **weights, reg.option: 1.0}
    try:
        trainer = Trainer(options, quiet=True)
    except UserError as e:
        message = str(e)
        assert option(reg.option) in message and loss in message and "\n" not in message
        return
    run_dir = trainer.run()
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert reg.stat in stats[-1], f"{reg.stat} not in stats.jsonl of --loss {loss} {option(reg.option)} 1"
    assert stats[-1][reg.stat]["num"] > 0


def test_the_refusals_are_the_expected_ones(tiny_options, digits):
    """Multi-scale losses need the MSG networks, which have no FSM in D and no heatmaps in G."""
    refused = set()
    for loss, regularizer in PAIRS:
        reg = REGULARIZERS.get(regularizer)
        g, d = networks_for(loss)
        try:
            Trainer({**tiny_options, "data": digits(16), "loss": loss, "g": g, "d": d, reg.option: 1.0}, quiet=True)
        except UserError:
            refused.add((loss, regularizer))
    assert refused == {("msg", "fsmr"), ("msg", "alignment"), ("msg-rahinge", "fsmr"), ("msg-rahinge", "alignment")}
