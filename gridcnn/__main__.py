"""``python -m gridcnn`` and the ``gridcnn`` script: the command line; Ctrl-C while it starts ends in one line."""

import signal
import sys


def main() -> None:
    """Import the command line and run it; exit 130 quietly when Ctrl-C comes while it loads.

    A KeyboardInterrupt that lands inside an import can leave a half-initialised module behind (scipy's array API
    shim then recurses until RecursionError), so any error raised after a Ctrl-C counts as the interruption.
    """
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        from gridcnn.cli.commands import main as run

        run()
    except SystemExit:
        raise
    except BaseException:
        if not interrupted:
            raise
        sys.stderr.write("Interrupted while starting; nothing was trained.\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
