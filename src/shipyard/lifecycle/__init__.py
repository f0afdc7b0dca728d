"""A run's lifecycle outside the graph: driving it under its lease, its records, cancelling
and preflight."""
