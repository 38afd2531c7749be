"""Using a trained generator, below both the tools and the studio: latents from seeds (`seeds`), images
(`generate`), style mixing (`mixing`), interpolation (`interpolation`), multi-scale grids (`multiscale`),
what a network can do (`network_info`), one image's settings (`settings`) and their rendering (`render`)."""
