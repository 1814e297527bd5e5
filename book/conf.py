"""Sphinx configuration of the book's website (MyST-NB and sphinx-book-theme: Jupyter Book 1's stack).

Built by `python -m sslkit.book build`, which stages this folder and the executed chapters into
one source folder. Everything the pages load is served from the site: it works offline.
"""

project = "Clustering-based self-supervised learning"
author = "the sslkit authors"
html_title = "Clustering-based self-supervised learning"

extensions = [
    "myst_nb",                  # the executed notebooks, with their stored outputs, and Markdown pages
    "sphinxcontrib.bibtex",     # references.bib: the bibliography and the chapters' citations
    "sphinx-mathjax-offline",   # MathJax 3 copied into _static (no CDN)
    "sslkit.book.sphinx_ext",   # Vega-Lite for the interactive figures, from _static
]

nb_execution_mode = "off"       # the stored outputs are the page; nothing is executed
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True
myst_heading_anchors = 3

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "alpha"
bibtex_reference_style = "label"

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,  # the notebooks live in the repository (chapters/)
    "use_fullscreen_button": False,
}
html_context = {"default_mode": "light"}
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_copy_source = False        # the notebooks are in the repository; the site holds the pages
html_show_sourcelink = False
html_last_updated_fmt = None
