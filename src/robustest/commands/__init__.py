"""Subcommands of the ``robustest`` CLI, one module each (see robustest.cli)."""
