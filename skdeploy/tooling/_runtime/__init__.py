"""Code that runs inside the runtime virtualenv (the container's Python), not in skdeploy's own."""
