"""The `vla-rl` command line: one module per command, registered in `commands.py`."""
