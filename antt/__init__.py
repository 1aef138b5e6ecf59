"""antt-map core: settings, the embedded PostGIS cluster, the database and its data model."""

__version__ = "0.1.0"
