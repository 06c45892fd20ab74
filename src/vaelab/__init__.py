"""vaelab: autoencoders, VAEs and conditional VAEs on MNIST, and a study comparing them."""

__version__ = "0.1.0"
