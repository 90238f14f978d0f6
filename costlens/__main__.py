"""Allow ``python -m costlens``."""

from costlens.cli import main

main()
