"""A user's own feature package (``inference/featurelib/``): sub-packages ship too."""
