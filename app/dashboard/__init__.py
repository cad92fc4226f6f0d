"""The dashboard: static files served at `/`, a frontend of the public API like any other."""
