"""The ``gridcnn`` command line: thin typer commands over the workflow, one module per group (``fit``, ``launch``
for ``--nproc``, ``evaluate`` with predict, ``inspection``: check, summary and the listings, ``deploy``: export and
serve), what they share (``app``), the entry point (``commands``), and the inputs ``gridcnn predict`` gathers from
files and folders (``inputs``)."""
