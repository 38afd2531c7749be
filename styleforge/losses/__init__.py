"""GAN losses and regularizers, one method per training phase; importing this registers them."""

from styleforge.losses import stylegan2  # noqa: F401
