"""The `loupe` command: import image folders into Loupe datasets."""
