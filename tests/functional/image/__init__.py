"""The image composer's functional tests: a package, so its conftest does not shadow tests/functional/conftest.py (both would be the module `conftest`)."""
