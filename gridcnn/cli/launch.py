"""``gridcnn fit --nproc N``: run the same ``gridcnn fit`` under torchrun in N processes on this machine."""

from __future__ import annotations

import os

from gridcnn.cli.app import STATE


def launch_fit(nproc: int, recipe, set_, out, device, resume, overwrite, time_limit, chosen=None) -> int:
    """Train the run folder ``out`` (claimed already) in ``nproc`` processes and return the exit status.

    ``chosen`` is the recipe chosen here for data given without one: the workers run it rather than a choice of
    their own, read from a file in the run folder that is no run file (so their claim of the folder does not refuse
    it) and is removed once they end (the run folder keeps recipe.toml, written by the workers).
    """
    if chosen is None:
        return _torchrun(nproc, recipe, set_, out, device, resume, overwrite, time_limit)
    path = out / ".chosen-recipe.toml"
    path.write_text(chosen.to_toml())
    try:
        return _torchrun(nproc, path, [], out, device, resume, overwrite, time_limit)
    finally:
        path.unlink(missing_ok=True)


def _torchrun(nproc: int, recipe, set_, out, device, resume, overwrite=False, time_limit=None) -> int:
    """Run this same ``gridcnn fit`` under torchrun with ``nproc`` processes; return the exit status.

    torchrun runs in this process so that a failed worker, which has already printed its one-line error, ends
    with that worker's exit status instead of torchrun's traceback and failure report.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = ["--standalone", f"--nproc_per_node={nproc}", "-m", "gridcnn", *(["--debug"] if STATE["debug"] else [])]
    if resume is not None:
        args += ["fit", "--resume", str(resume)]
    else:
        args += ["fit", str(recipe), "--out", str(out), *[a for item in set_ for a in ("--set", item)]]
        args += ["--overwrite"] if overwrite else []
    args += ["--device", device] if device else []
    args += ["--time-limit", time_limit] if time_limit else []
    # Split the cores between the processes (torchrun would set one thread each and warn about it).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    if not STATE["debug"]:  # torch's elastic modules set their own logger levels: quieten each of them
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args(args))
    except ChildFailedError as exc:
        if STATE["debug"]:
            raise
        _, failure = exc.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1
    except (KeyboardInterrupt, SignalException):
        return 130
    return 0
