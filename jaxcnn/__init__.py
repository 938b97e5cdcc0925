"""jaxcnn: CaffeNet in JAX/Flax and the analyses of Agrawal, Girshick & Malik (ECCV 2014)."""

__version__ = "0.1.0"
