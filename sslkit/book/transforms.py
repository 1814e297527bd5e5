"""What turns an executed chapter into a page of the site, on a copy (the chapter is not changed).

* Display math: a ``$$`` block that follows a line of text gets a blank line before it. Jupyter
  reads such a block as math; MyST reads it as part of the paragraph (a ``- x`` line inside
  it then starts a list).
* Section numbers: chapter 05's "## 3. The role of epsilon" becomes "5.3 The role of epsilon",
  with a target (``ch05-sec3``) other pages and the text can link to.
* Cross-references: "chapter 03", "chapters 02 and 03", "Chapters 03–06" link to those
  chapters; "section 7" links to section 7 of the same chapter.
* References: each bullet opens with a citation of its entry in the bibliography.
* Interactive figures: a Vega-Lite output becomes HTML that draws it with the Vega-Lite the
  site serves itself (``_static/vega-bundle.js``), with its PNG for readers without JavaScript.
"""

from __future__ import annotations

import json
import re

from ..interactive import VEGALITE_MIME
from .references import cite_references, references_span

# Code, math, links and HTML are left alone: the text between them is what gets linked.
_PROTECTED = re.compile(r"(```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]+\$|\[[^\]\n]*\]\([^)\n]*\)|<[^>\n]*>)", re.S)
_CHAPTERS = re.compile(r"\b([Cc]hapters?)(\s+)(\d\d(?:(?:,\s*|\s+and\s+|\s+or\s+|\s*[-–]\s*)\d\d)*)\b(?!\.\d)")
_SECTIONS = re.compile(r"\b([Ss]ections?)(\s+)(\d{1,2}(?:(?:,\s*|\s+and\s+|\s*[-–]\s*)\d{1,2})*)\b(?![.\d])")
_NUMBERED = re.compile(r"^## (\d+)\. (.+)$", re.M)


def separate_display_math(source: str) -> str:
    """A blank line before every ``$$`` block that opens right under a line of text."""
    lines, out, in_math, in_code = source.split("\n"), [], False, False
    for line in lines:
        text = line.strip()
        if text.startswith("```"):
            in_code = not in_code
        elif not in_code and text.startswith("$$") and not in_math and out and out[-1].strip():
            out.append("")
        if not in_code:
            in_math ^= line.count("$$") % 2 == 1
        out.append(line)
    return "\n".join(out)


def section_label(chapter: str, number: str) -> str:
    return f"ch{chapter}-sec{int(number)}"


def number_sections(source: str, chapter: str) -> tuple[str, list[str]]:
    """Prefix the chapter's number to its numbered sections, each with a MyST target."""
    found = []

    def sub(m):
        found.append(m.group(1))
        return f"({section_label(chapter, m.group(1))})=\n## {int(chapter)}.{int(m.group(1))} {m.group(2)}"

    return _NUMBERED.sub(sub, source), found


def _outside_protected(text: str, fn) -> str:
    """Apply ``fn`` to the text outside code, math, links and HTML, line by line, skipping headings."""
    parts = _PROTECTED.split(text)
    for i in range(0, len(parts), 2):
        lines = parts[i].split("\n")
        parts[i] = "\n".join(x if x.lstrip().startswith("#") and (j > 0 or i == 0) else fn(x)
                             for j, x in enumerate(lines))
    return "".join(parts)


def link_chapters(text: str, pages: dict[str, str], own: str) -> str:
    """Link each mention of another chapter ("chapter 03", "chapters 02 and 03") to its page."""
    def sub(m):
        numbers = re.findall(r"\d\d", m.group(3))
        if len(numbers) == 1:
            n = numbers[0]
            return f"[{m.group(0)}]({pages[n]})" if n in pages and n != own else m.group(0)
        linked = re.sub(r"\d\d", lambda d: f"[{d.group(0)}]({pages[d.group(0)]})"
                        if d.group(0) in pages and d.group(0) != own else d.group(0), m.group(3))
        return m.group(1) + m.group(2) + linked

    return _outside_protected(text, lambda line: _CHAPTERS.sub(sub, line))


def link_sections(text: str, chapter: str, sections: list[str]) -> str:
    """Link "section N" to section N of this chapter (not "chapter 03's section 7", nor "3.3")."""
    def sub(m, line):
        if re.search(r"[Cc]hapter \d\d's\s*$|paper's\s*$", line[:m.start()]):
            return m.group(0)
        numbers = re.findall(r"\d+", m.group(3))
        if len(numbers) == 1:
            n = numbers[0]
            return f"{{ref}}`{m.group(0)} <{section_label(chapter, n)}>`" if n in sections else m.group(0)
        linked = re.sub(r"\d+", lambda d: f"{{ref}}`{d.group(0)} <{section_label(chapter, d.group(0))}>`"
                        if d.group(0) in sections else d.group(0), m.group(3))
        return m.group(1) + m.group(2) + linked

    return _outside_protected(text, lambda line: _SECTIONS.sub(lambda m: sub(m, line), line))


def vega_html(spec: dict, png: str | None, element: str) -> str:
    """HTML that draws a Vega-Lite spec with the site's own vegaEmbed (no request leaves the site)."""
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    html = (f'<div class="sslkit-vega" id="{element}"></div>\n'
            f'<script>vegaEmbed("#{element}", {data}, {{"actions": false}}).catch(console.error);</script>')
    if png:
        html += f'\n<noscript><img alt="the figure at its first slider positions" src="data:image/png;base64,{png}"></noscript>'
    return html


def chapter_page(nb, stem: str, pages: dict[str, str], bib: dict[str, set[str]]) -> list[str]:
    """Turn the notebook ``nb`` (nbformat, a copy) into its page in place; return the problems found."""
    chapter, problems = stem[:2], []
    sections = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, found = number_sections(separate_display_math(cell.source), chapter)
            sections += found

    def link(text):
        return link_sections(link_chapters(text, pages, chapter), chapter, sections)

    figures = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            a, b = references_span(cell.source) or (len(cell.source), len(cell.source))
            refs, missing = cite_references(cell.source[a:b], bib)
            problems += [f"{stem}: {m}" for m in missing]
            cell.source = link(cell.source[:a]) + refs + link(cell.source[b:])
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if VEGALITE_MIME in out.get("data", {}):
                figures += 1
                html = vega_html(out["data"][VEGALITE_MIME], out["data"].get("image/png"), f"vega-{stem}-{figures}")
                out["data"] = {"text/html": html}
                out["metadata"] = {}
    return problems
