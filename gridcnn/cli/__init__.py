"""The ``gridcnn`` command line: thin typer commands (``commands``) over the workflow, and the inputs
``gridcnn predict`` gathers from files and folders (``inputs``)."""
