"""GAN losses (the template in `base.py`, a loss per module) and the regularizers any of them can add;
importing this registers them all."""

from styleforge.losses import (  # noqa: F401
    alignment,
    drift,
    fsmr,
    gradient_penalty,
    logistic,
    msg,
    path_length,
    r1,
    rahinge,
    wgan,
)
