"""``python -m gridcnn`` runs the command line."""

from .cli import main

main()
