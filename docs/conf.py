"""Sphinx configuration of the sb3-gpg documentation: sphinx-build -W -b html docs docs/_build/html"""

import sb3_gpg

project = "sb3-gpg"
author = "the sb3-gpg authors"
copyright = "the sb3-gpg authors, MIT license"
version = release = sb3_gpg.__version__

extensions = [
    "sphinx.ext.autodoc",  # the parameters of GPG and of its policies, from their docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# Autodoc imports sb3_gpg (installed with pip install -e ".[docs]"); SB3's docstrings use reST field lists.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

templates_path: list[str] = []
exclude_patterns = ["_build"]
html_theme = "sphinx_rtd_theme"
html_title = f"sb3-gpg {release}"
