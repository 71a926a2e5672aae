"""Code that runs inside the runtime virtualenv (the container's Python), not in skdeploy's own.

Nothing here is imported: ``skdeploy.tooling.local`` runs ``_skdeploy_serve_app.py`` (with its
``_skdeploy_serve_*`` siblings) and ``_skdeploy_gunicorn_conf.py`` by path, so the public API is
empty.
"""

__all__ = []
