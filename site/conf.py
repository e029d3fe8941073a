"""Sphinx configuration of the reading version (``make site``; staged by ``nlcl_utils.pipeline.site``).

The notebooks are rendered as committed (never executed) and nothing is fetched from the
network: MathJax is the local copy staged in ``_static/mathjax`` and no theme option that
links to or loads from another host is switched on.
"""

project = "nlcl"
author = "the nlcl contributors"
copyright = "the nlcl contributors"  # no year: the build does not depend on the date
html_title = "nlcl: nonlinearity in contrastive learning, reproduced"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# MyST-NB: show the committed outputs, never run a kernel.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_double_inline = True  # the notebooks put $$...$$ display math inside paragraphs
myst_heading_anchors = 3
# MathJax 3.2 (TeX input, SVG output: glyphs are drawn as paths, so no web fonts are fetched)
# from the django-static-mathjax package, copied into _static/mathjax by the staging step.
# MyST adds its processHtmlClass to this configuration and marks the rest of each page as
# already parsed, so MathJax typesets exactly the math that MyST found.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["nlcl.css"]
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "light"}  # the figures are drawn on white
html_show_sourcelink = False
html_copy_source = False
html_use_index = False  # no index entries anywhere: the general index would be an empty page
html_show_sphinx = False
html_show_copyright = False  # the footer names the authors once
html_last_updated_fmt = None
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # the sidebar has the search field already
}
