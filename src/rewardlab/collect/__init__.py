"""Feedback collection: the annotation service (store, web app, agreement statistics, export) and simulated
annotators; web and database pieces load only when used (the `annotate` extra)."""
