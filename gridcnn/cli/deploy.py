"""``gridcnn export`` and ``gridcnn serve``: a trained model used outside Python (an ONNX graph, an HTTP server)."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from gridcnn.cli.app import DATA, USAGE, app, console, user_errors
from gridcnn.exceptions import GridCNNError


@app.command()
def export(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    format_: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    out: Optional[Path] = typer.Option(None, "--out", help="The file to write (default RUN/model.onnx)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export's files (refused otherwise)."),
):
    """Write the model (its preprocessing included) as an ONNX graph, with a JSON sidecar beside it.

    Example: gridcnn export runs/image-20261122-101500 --out mnist.onnx
    """
    from gridcnn.export.onnx import check_format, check_free, check_output, export_onnx, require_onnx
    from gridcnn.modelfile.persistence import load

    with user_errors(USAGE):
        check_format(format_)
        target = check_output(out or run_or_model / "model.onnx")
        check_free(target, (), overwrite)  # before the model is read: the .onnx and its sidecar
        require_onnx()
        model = load(run_or_model, device="cpu")
    with user_errors(DATA):
        onnx_path, json_path = export_onnx(model, target, overwrite=overwrite)
    console.print(f"[green]Wrote[/] {escape(str(onnx_path))} and {escape(str(json_path))}", soft_wrap=True)
    inputs = json.loads(json_path.read_text())["inputs"]
    if len(inputs) > 1:  # what a caller must pass beyond the data (a sound clip's rate), said where they export
        told = "; ".join(f"{i['name']} {i['dtype']} {i['shape']}" + (f" = {i['value']}" if "value" in i else "")
                         for i in inputs)
        console.print(escape(f"The graph takes {told}; any other {inputs[1]['name']} is refused (see the sidecar)."),
                      soft_wrap=True)


@app.command()
def serve(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", min=0.001, help="Largest request body (413 above)."),
    max_inputs: int = typer.Option(64, "--max-inputs", min=1, help="Most inputs in one request."),
    batching: bool = typer.Option(False, "--batching/--no-batching",
                                  help="Run requests that arrive while the network is busy as one batch."),
    engine: str = typer.Option("auto", "--engine",
                               help="auto (onnxruntime where the export extra is installed, else torch), "
                                    "onnxruntime or torch."),
):
    """Serve the model: POST /predict, GET /health, GET /model, and a page at / to try it in a browser.

    Example: gridcnn serve runs/image-20261122-101500 --port 8000
    """
    from gridcnn.serve import create_app, require_serve

    with user_errors(USAGE):
        require_serve()
        application = create_app(run_or_model, max_upload_mb=max_upload_mb, max_inputs=max_inputs,
                                 batching=batching, engine=engine)
        _check_address(host, port)  # one line, where uvicorn would log a traceback-like error and exit
    import uvicorn

    console.print(f"[bold]gridcnn serve[/] {escape(str(run_or_model))} on http://{host}:{port} "
                  f"(engine: {application.state.predictor.engine.name})", soft_wrap=True)
    uvicorn.run(application, host=host, port=port, log_level="info")


def _check_address(host: str, port: int) -> None:
    """Refuse a port in use (or a host this machine has no address for) before uvicorn tries to listen there."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise GridCNNError(f"Cannot listen on --host {host}: {exc.strerror or exc}. Use an address of this machine, "
                           "such as 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR lets a port whose last connections linger in TIME_WAIT be taken again, while
        # a port another process listens on is still refused.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise GridCNNError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}"
                + (" (another server, or another gridcnn serve, uses that port). Choose another --port, or stop it."
                   if exc.errno == errno.EADDRINUSE else ". Choose another --port (ports below 1024 need root) or --host.")
            ) from None
