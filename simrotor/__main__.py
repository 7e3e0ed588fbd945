"""``python -m simrotor`` is the ``simrotor`` command (used where the console script
is not on PATH, e.g. from a benchmark's child process)."""
from simrotor.cli import main

if __name__ == "__main__":
    main()
