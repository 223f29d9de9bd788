"""Destination plugins: the shared contract (`base`), the registry, one folder per destination."""
