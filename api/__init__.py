"""The REST API: ingest, queries, status. Routes publish and query; they hold no SQL."""
