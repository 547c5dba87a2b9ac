"""``python -m loadtest``: see :mod:`loadtest.run`."""

from loadtest.run import app

if __name__ == "__main__":
    app(prog_name="python -m loadtest")
