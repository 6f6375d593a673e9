"""loupe-edge: Loupe models on a factory PC, served over the Lookout for Vision Edge Agent contract."""

__version__ = "0.1.0"
