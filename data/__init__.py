"""Data in and out: boundary loaders, importers and demo data."""
