"""Turn experiment records (JSON) into human-readable Markdown reports with figures."""
