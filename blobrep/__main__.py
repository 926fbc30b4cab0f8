"""``python -m blobrep``: the same as the ``blobrep`` command."""

from blobrep.cli.main import main

if __name__ == "__main__":
    main()
