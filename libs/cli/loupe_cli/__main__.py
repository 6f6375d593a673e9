"""`python -m loupe_cli` runs the `loupe` command."""

from .main import app

app(prog_name="loupe")
