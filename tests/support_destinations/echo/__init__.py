"""A destination that appends each call to a file, registered on import.

Name it in `TURNOUT_DESTINATION_MODULES=support_destinations.echo` (with `tests/` on
PYTHONPATH) and `turnout serve` offers it like a built-in one.
"""

from turnout.destinations import registry

from .destination import Echo

registry.register(Echo())

__all__ = ["Echo"]
