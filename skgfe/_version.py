"""The package version and documentation address, in a module of their own so
that any module can read them."""

__version__ = "0.1.0.dev0"

# Where autosummary's pages of the API reference are served (pyproject.toml's
# Documentation URL, plus docs/api.rst's generated/ folder).
API_PAGES = "https://skgfe.readthedocs.io/en/latest/generated/"
