"""The HTTPS front door's Lambda function (``handler.py``), which runs in Lambda, not here.

Nothing here is imported by the program: :mod:`skdeploy.infra.api` ships ``handler.py`` by path
in the function's zip, so the public API is empty.
"""

__all__: list[str] = []
