"""The one user-facing error type; the CLI catches it once and prints it as one line."""


class GridCNNError(ValueError):
    """A mistake in the user's input, parameters, recipe or files.

    It subclasses ``ValueError`` so scikit-learn's conventions (and ``except ValueError``) keep working.
    The message always says what was expected, what came, and how to fix it.
    """
