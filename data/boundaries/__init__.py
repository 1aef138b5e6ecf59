"""Boundary loaders (the real files in ../shared) and the project's own small fixtures."""
