"""Official network pickles (NVlabs, genforce) read safely and converted to StyleForge networks.

unpickler: the restricted unpickler (no code from a pickle runs); torch_modules: PyTorch-era module trees
as data; names: official PyTorch StyleGAN2 names and arguments -> ours; tf, tf_stylegan2, tf_stylegan1,
tf_progan: TensorFlow-era networks -> ours; importer: formats, conversion, listing.
"""
