"""HTTP API: OGC API Features, vector tiles, analytics, editing, accounts."""
