"""``python -m gridcnn`` and the ``gridcnn`` script: the command line; Ctrl-C while it starts ends in one line."""

import sys


def main() -> None:
    """Import the command line and run it; exit 130 quietly when Ctrl-C comes while it loads."""
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted while starting; nothing was trained.\n")
        raise SystemExit(130) from None
    run()


if __name__ == "__main__":
    main()
