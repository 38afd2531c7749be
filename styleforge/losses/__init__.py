"""GAN losses and regularizers, one method per training phase."""
