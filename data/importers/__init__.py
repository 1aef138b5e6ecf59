"""`antt import`: file importers with one transaction per import."""
