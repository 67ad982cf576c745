"""gridcnn's benchmark scripts: run each from the repository root as ``python -m benchmarks.NAME``.

benchmarks/README.md lists every script, what it measures, its command and its rough time; RESULTS.md keeps the
figures by topic, each with its command and machine. Nothing here is imported by the package itself.
"""
