"""Feedback collection: simulated annotators (and, later, the annotation service and AI annotators)."""
