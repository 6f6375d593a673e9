"""Loupe hosting service: which model versions run, on how many inference units."""
