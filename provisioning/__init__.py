"""Installer tooling and the root of the ``simrotor`` command line."""
