"""Loupe training service: model versions, training and evaluation."""
