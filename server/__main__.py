"""``python -m server ...`` is the same as the ``durata`` console script."""

from server.cli import main

if __name__ == "__main__":
    main()
