"""GAN losses and regularizers, one method per training phase; importing this registers them."""

from styleforge.losses import msg, stylegan2, wgangp  # noqa: F401
