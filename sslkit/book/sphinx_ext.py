"""The site's own Sphinx extension: Vega-Lite served from the site, on the pages that draw it.

The chapters' interactive figures are Vega-Lite specs drawn by ``vegaEmbed`` in the browser.
vl-convert (the library Altair saves stand-alone HTML with) bundles vega, vega-lite and
vega-embed into one script; it is written to ``_static/vega-bundle.js`` once per build and
loaded only by pages with a figure, so no page asks a CDN for anything.
"""

from __future__ import annotations

from pathlib import Path

BUNDLE = "vega-bundle.js"
MARK = 'class="sslkit-vega"'


def _vega_lite_version() -> str:
    import altair

    return altair.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]  # "5.20": the version the specs were written for


def write_bundle(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import vl_convert

    snippet = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
    out = Path(app.outdir) / "_static" / BUNDLE
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle = vl_convert.javascript_bundle(snippet, vl_version=_vega_lite_version())
    # A classic script shares one global scope with Sphinx's (which declares ``_``): keep the
    # bundle's top-level names inside a function; only the three globals above leave it.
    out.write_text("(function () {\n" + bundle + "\n})();\n")


def page_scripts(app, pagename, templatename, context, doctree) -> None:
    """Load the bundle on this page only (Sphinx resets the page's scripts for each page)."""
    if MARK in context.get("body", ""):
        app.add_js_file(BUNDLE)


def setup(app):
    app.connect("html-page-context", page_scripts)
    app.connect("build-finished", write_bundle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
