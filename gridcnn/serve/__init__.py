"""`gridcnn serve`: a trained model behind an HTTP API and a page (needs the ``serve`` extra).

``create_app`` is imported on first use, so ``import gridcnn.serve`` works without the extra and says what to
install when it is called.
"""

from __future__ import annotations

from gridcnn.exceptions import GridCNNError


def require_serve() -> None:
    """Import the serve extra's packages, or say how to install them."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form and file parser)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise GridCNNError(
            f"gridcnn serve needs the packages fastapi, uvicorn and python-multipart ({exc.name} is missing). "
            "Install them with: pip install 'gridcnn[serve]'"
        ) from None


def create_app(model, **options):
    """The FastAPI app serving ``model``; see `gridcnn.serve.app.create_app` for the options."""
    require_serve()
    from gridcnn.serve.app import create_app as factory

    return factory(model, **options)


__all__ = ["create_app", "require_serve"]
