"""From a path or a recipe to a run folder: recipes (``recipes``), zero-config choices (``auto``), running a recipe
and writing its folder (``runs``, ``run_folder``), and the folder's pictures (``plots``)."""
