"""Each map layer defined once: source, properties, who may see it, style, aggregation."""
