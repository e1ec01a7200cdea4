"""``python -m mlflowcheck``: the same as the ``mlflowcheck`` command (the current directory
is the project directory: my.db, mlartifacts/, reports/)."""

from mlflowcheck.cli import console_main

if __name__ == "__main__":
    console_main(prog="python -m mlflowcheck")
