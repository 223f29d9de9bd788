"""Destinations defined only by the test suite, loaded the way a plugin is: by module name."""
