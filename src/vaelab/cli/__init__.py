"""The `vaelab` command line (`app`): thin commands over the library."""

from vaelab.cli.app import main, run

__all__ = ["main", "run"]
