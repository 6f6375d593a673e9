"""Loupe human-loop service: the A2I runtime API, flow definitions and reviewer tasks."""
