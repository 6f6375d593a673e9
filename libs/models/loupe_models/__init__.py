"""Pretrained models Loupe runs with onnxruntime, exported once by `make models`."""
