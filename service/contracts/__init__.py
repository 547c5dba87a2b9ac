"""Contracts the serving side owns and the offline writers import: bundle manifest, graph
signatures, feature schema, Redis key layout, and the pointer files of a bundle root."""
