"""Feature networks and GAN metrics (FID, KID, precision/recall, IS, PPL)."""
