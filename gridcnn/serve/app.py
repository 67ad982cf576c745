"""`create_app(model) -> FastAPI`: the prediction API and the page, over one model loaded once.

Routes: ``POST /predict`` (multipart ``files`` or JSON ``{"inputs": [...]}``; ``?feature_maps=true`` adds the first
input's maps per block, ``?explain=true[&target=CLASS]`` where the network looked, see ``_explain``), ``GET /health``,
``GET /model``,
``GET /`` (the page) and ``/static/*`` (its script and style, served by the app: no CDN, no build step).
A user's mistake is answered 4xx with ``{"error": "..."}``; anything else is logged with its traceback and
answered 500 with a message that names nothing inside. Inference runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from gridcnn.exceptions import GridCNNError
from gridcnn.serve._batcher import Batcher
from gridcnn.serve._engine import check_engine, check_exported_file
from gridcnn.serve._explain import predict_and_explain, target_index
from gridcnn.serve._limits import BodyLimit
from gridcnn.serve._predictor import Predictor, RequestError

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("gridcnn.serve")


def create_app(model, *, max_upload_mb: float = 10.0, max_inputs: int = 64, batching: bool = False,
               engine: str = "auto") -> FastAPI:
    """The FastAPI app serving ``model``.

    Parameters
    ----------
    model : str, Path, GridCNNClassifier or Pipeline
        A run or model folder (loaded once, here, with `gridcnn.load`; its ``recipe.toml`` and ``metrics.json``
        are read for ``/model``) or a fitted model.
    max_upload_mb : float, default=10.0
        Largest request body accepted; a larger one is answered 413.
    max_inputs : int, default=64
        Most inputs (files or JSON items) in one request.
    batching : bool, default=False
        Run requests that arrive while the network is busy through it together (see ``_batcher``).
    engine : {"auto", "onnxruntime", "torch"}, default="auto"
        What computes the probabilities: "auto" runs the network exported to ONNX in onnxruntime where the
        ``export`` extra is installed (5-9x faster), torch otherwise; ``GET /model`` says which.

    Returns
    -------
    app : fastapi.FastAPI
        Run it with uvicorn, or call it in tests with ``fastapi.testclient.TestClient``.
    """
    check_engine(engine)
    run_dir = None
    if isinstance(model, (str, Path)):
        from gridcnn.modelfile.persistence import load

        run_dir = Path(model)
        model = load(run_dir)
    stale = check_exported_file(run_dir)
    if stale:
        log.warning(stale)
    predictor = Predictor(model, run_dir, engine)
    predictor.warm_up()
    batcher = Batcher(predictor) if batching else None
    app = FastAPI(title="gridcnn", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.predictor = predictor
    app.add_middleware(BodyLimit, max_mb=max_upload_mb)

    @app.exception_handler(GridCNNError)
    async def user_error(request: Request, exc: GridCNNError):
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": f"Invalid request: {exc.errors()[0].get('msg', 'bad value')}."}, status_code=422)

    # HEAD as well as GET: uptime monitors and load balancers probe with HEAD (starlette answers it without a body).
    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health():
        return {"status": "ok"}

    page_info = _page_info(predictor, run_dir)

    @app.api_route("/model", methods=["GET", "HEAD"])
    async def describe():
        return {**predictor.describe(), **page_info, "max_inputs": max_inputs, "max_upload_mb": max_upload_mb}

    @app.post("/predict")
    async def predict(request: Request, feature_maps: bool = False, explain: bool = False, target: str | None = None):
        inputs = await _read_inputs(request, predictor, max_inputs)  # read first: the connection stays usable
        if target is not None and not explain:
            raise RequestError("'target' names the class to explain: add explain=true (or leave target out).")
        target_class = target_index(predictor, target)
        if explain:
            return await run_in_threadpool(lambda: predict_and_explain(predictor, inputs(), feature_maps, target_class))
        if batcher is not None and not feature_maps:
            return await batcher.predict(inputs)
        # Decoding and the network in one trip to a worker thread: each trip costs more than the network's 0.5 ms.
        return await run_in_threadpool(lambda: predictor.predict(inputs(), feature_maps))

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon():  # browsers ask for it whatever the page links; an SVG answers them all
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _page_info(predictor: Predictor, run_dir: Path | None) -> dict:
    """What the page shows besides the predictor's description: a name for the model, and for sound models the
    clip length and rate (the page records and draws at them)."""
    if run_dir is None:
        name = type(predictor.estimator).__name__
    else:  # a run folder's name says what was run; a bare "model" folder is named by the folder around it
        path = run_dir.resolve()
        name = path.parent.name if path.name == "model" else path.name
    info = {"name": name}
    if predictor.upload_kind == "sound":  # the page records clips: at the adapter's length and rate
        info.update(sample_rate=int(predictor.adapter.sample_rate), duration_s=float(predictor.adapter.duration_))
    return info


async def _read_inputs(request: Request, predictor: Predictor, max_inputs: int):
    """A function that returns the request's inputs in the form the predictor reads (to be called in a worker
    thread: it decodes), or a `RequestError` saying what was expected."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        predictor.from_files([])  # a model that reads no files says so before the body is parsed
        try:
            form = await request.form(max_files=max_inputs + 1, max_fields=max_inputs + 1)
        except HTTPException as exc:  # starlette's multipart parser: malformed body, too many parts
            if "Too many" in str(exc.detail):
                raise RequestError(f"More than {max_inputs} inputs in one request; this server takes at most "
                                   f"{max_inputs}. Split the request.", 413) from None
            raise RequestError(f"Could not read the multipart body: {exc.detail}.") from None
        uploads = [f for f in form.getlist("files") if hasattr(f, "read")]
        if not uploads:
            other = [k for k in form.keys() if k != "files"]
            raise RequestError("No file in the request: send each file in a multipart field named 'files'"
                               + (f" (got fields {other})." if other else "."))
        _check_count(len(uploads), max_inputs)
        files = [(f.filename or f"file {i}", await f.read()) for i, f in enumerate(uploads)]
        await form.close()
        return lambda: predictor.from_files(files)
    if content_type == "application/json":
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"The body is not valid JSON ({exc}). Send {{\"inputs\": [...]}}.") from None
        except RecursionError:  # Python's decoder recurses once per level: [[[[...]]]] thousands deep
            raise RequestError("The body nests JSON arrays or objects too deeply to read (no grid has more than 3 "
                               "axes). Send {\"inputs\": [...]}, each input a grid shaped like the model's.") from None
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise RequestError("Expected a JSON object {\"inputs\": [...]}: a list of " + predictor.accepts() + ".")
        if not body["inputs"]:
            raise RequestError("\"inputs\" is empty. Send at least one input.")
        _check_count(len(body["inputs"]), max_inputs)
        return lambda: predictor.from_json(body["inputs"])
    await request.body()  # read it all (up to the size limit), so the connection stays usable for the next request
    raise RequestError(
        f"POST /predict takes multipart/form-data (files in the field 'files') or application/json "
        f"({{\"inputs\": [...]}}); got {content_type or 'no content type'}.", 415)


def _check_count(n: int, max_inputs: int) -> None:
    if n > max_inputs:
        raise RequestError(f"{n} inputs in one request; this server takes at most {max_inputs}. Split the request.",
                           413)
