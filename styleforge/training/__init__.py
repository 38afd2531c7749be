"""Training configuration, the loop of GAN phases, checkpoints, distributed set-up."""
