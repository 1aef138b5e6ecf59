"""The map page, its vendored assets and the Folium report maps."""
