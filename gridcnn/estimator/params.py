"""scikit-learn's declarative parameter check, with "did you mean" for misspelt option strings."""

from __future__ import annotations

from sklearn.utils._param_validation import InvalidParameterError, StrOptions, validate_parameter_constraints

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError


def validate_params(estimator, names=None, synonyms: dict | None = None) -> None:
    """Check ``estimator``'s parameters (``names``, default all) against its ``_parameter_constraints``.

    Parameters
    ----------
    estimator : BaseEstimator
        Anything with ``get_params`` and a ``_parameter_constraints`` table.
    names : iterable of str, default=None
        Only these parameters.
    synonyms : dict, default=None
        Words users type for an option ({"gray": "L"}), suggested when no spelling is close.

    Raises
    ------
    GridCNNError
        sklearn's message ("The 'pool' parameter of X must be one of {...}. Got 'maxx' instead.") and a hint.
    """
    check_constraints(estimator.get_params(deep=False), estimator._parameter_constraints, type(estimator).__name__,
                      names, synonyms)


def check_constraints(params: dict, constraints_of: dict, owner: str, names=None, synonyms: dict | None = None) -> None:
    """`validate_params` for any function's arguments: ``params`` against a constraints table, the message naming
    ``owner`` (what `check_suitability` checks its keyword arguments with)."""
    for name in names or constraints_of:
        constraints = constraints_of[name]
        try:
            validate_parameter_constraints({name: constraints}, {name: params[name]}, owner)
        except InvalidParameterError as exc:
            value = params[name]
            hint = ""
            if isinstance(value, str):  # did_you_mean matches any case first: 'nchw' -> 'NCHW'
                options = [o for c in constraints if isinstance(c, StrOptions) for o in c.options]
                alias = (synonyms or {}).get(value.lower())
                close = did_you_mean(value, options)
                hint = f" Did you mean '{alias}'?" if alias and not close else close
            raise GridCNNError(f"{exc}{hint}") from None
