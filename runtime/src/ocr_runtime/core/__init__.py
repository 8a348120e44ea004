"""Cross-cutting infrastructure: settings, logging, metrics."""
