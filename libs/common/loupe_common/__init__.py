"""Loupe's shared contracts and plumbing. Nothing service-specific lives here."""
