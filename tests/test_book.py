"""The website's sources: every chapter's references are in book/references.bib, and the
transforms that turn a chapter into a page (section numbers, links, citations, figures)."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sslkit.book import references as refs
from sslkit.book.stage import landing_page, results_page, stage
from sslkit.book.transforms import (chapter_page, link_chapters, link_sections, number_sections,
                                    separate_display_math, vega_html)

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
BIB = refs.load_bib(ROOT / "book" / "references.bib")


def _references(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "markdown" and refs.references_span(c.source)]
    assert len(cells) == 1, f"{path.name}: expected one '## References' section, found {len(cells)}"
    a, b = refs.references_span(cells[0])
    return refs.reference_bullets(cells[0][a:b], BIB)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_reference_is_one_bib_entry(path):
    bullets = _references(path)
    assert bullets, f"{path.name} lists no references"
    for b in bullets:
        assert len(b.keys) == 1, (f"{path.name}: this reference should match exactly one entry of "
                                  f"book/references.bib by its DOI, arXiv id or url, matches {b.keys}: {b.text}")


def test_every_bib_entry_is_cited_and_has_a_link():
    cited = {k for path in CHAPTERS for b in _references(path) for k in b.keys}
    assert set(BIB) == cited, f"entries no chapter cites: {sorted(set(BIB) - cited)}"
    assert all(ids for ids in BIB.values())


def test_link_ids_match_doi_arxiv_and_addresses():
    assert refs.link_ids("https://arxiv.org/abs/1911.05371") >= {"arxiv:1911.05371"}
    assert refs.link_ids("https://dl.acm.org/doi/10.5555/1283383.1283494") >= {"doi:10.5555/1283383.1283494"}
    assert "url:jmlr.org/papers/v3/strehl02a.html" in refs.link_ids("https://www.jmlr.org/papers/v3/strehl02a.html")
    assert refs.entry_ids({"eprint": "2006.09882", "doi": "10.1/X"}) == {"arxiv:2006.09882", "doi:10.1/x"}


def test_references_become_citations():
    bib = {"cuturi": {"arxiv:1306.0895"}, "other": {"doi:10.1/x"}}
    text = ("## References\n\n* M. Cuturi. *Sinkhorn.* [arXiv:1306.0895](https://arxiv.org/abs/1306.0895).\n"
            "* Unknown. [code](https://github.com/x/y)\n  second line.")
    cited, problems = refs.cite_references(text, bib)
    assert "* {cite:p}`cuturi` M. Cuturi." in cited and "* Unknown." in cited
    assert len(problems) == 1 and "matches 0 bib entries" in problems[0]


def test_section_numbers_and_links():
    text, found = number_sections("intro\n\n## 3. The role of epsilon\ntext\n## Summary", "05")
    assert found == ["3"] and "(ch05-sec3)=\n## 5.3 The role of epsilon\n" in text and "## Summary" in text
    out = link_sections("see section 3, chapter 03's section 3, section 3.3 and section 9", "05", ["3"])
    assert out == ("see {ref}`section 3 <ch05-sec3>`, chapter 03's section 3, section 3.3 and section 9")


def test_chapter_links_leave_code_math_headings_and_itself_alone():
    pages = {"02": "02_a.ipynb", "03": "03_b.ipynb", "05": "05_c.ipynb"}
    text = ("# Chapter 05 — title\nAs chapter 03 showed; chapters 02 and 03; Chapters 03–05; `chapter 03`; "
            "$chapter 03$; [chapter 02](x.ipynb); this chapter 05; chapter 09.")
    out = link_chapters(text, pages, "05")
    assert out == ("# Chapter 05 — title\nAs [chapter 03](03_b.ipynb) showed; chapters [02](02_a.ipynb) and "
                   "[03](03_b.ipynb); Chapters [03](03_b.ipynb)–05; `chapter 03`; $chapter 03$; "
                   "[chapter 02](x.ipynb); this chapter 05; chapter 09.")


def test_display_math_gets_its_own_block():
    assert separate_display_math("a:\n$$\nx\n- y\n$$\nb") == "a:\n\n$$\nx\n- y\n$$\nb"
    assert separate_display_math("a\n\n$$x$$\nb") == "a\n\n$$x$$\nb"
    assert separate_display_math("```\na\n$$\n```") == "```\na\n$$\n```"


def test_vega_output_becomes_html_that_cannot_close_its_script():
    html = vega_html({"title": "</script><b>"}, "iVBOR", "fig-1")
    assert '<div class="sslkit-vega" id="fig-1">' in html and "</script><b>" not in html
    assert json.loads(html.split('vegaEmbed("#fig-1", ')[1].split(', {"actions"')[0]) == {"title": "</script><b>"}
    assert 'src="data:image/png;base64,iVBOR"' in html


def test_chapter_page_replaces_figures_and_cites():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Chapter 03 — x\n\n## 1. One\nsee section 1 and chapter 02"),
        nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
            "execute_result", data={"application/vnd.vegalite.v5+json": {"mark": "bar"}, "text/plain": "fig"},
            execution_count=1)]),
        nbformat.v4.new_markdown_cell("## Summary\n\n## References\n\n* [a](https://arxiv.org/abs/1306.0895)")])
    problems = chapter_page(nb, "03_x", {"02": "02_y.ipynb", "03": "03_x.ipynb"}, {"cuturi": {"arxiv:1306.0895"}})
    assert problems == []
    assert "## 3.1 One" in nb.cells[0].source and "[chapter 02](02_y.ipynb)" in nb.cells[0].source
    assert "{ref}`section 1 <ch03-sec1>`" in nb.cells[0].source
    assert list(nb.cells[1].outputs[0].data) == ["text/html"] and "vega-03_x-1" in nb.cells[1].outputs[0].data["text/html"]
    assert "* {cite:p}`cuturi` [a]" in nb.cells[2].source


def test_results_page_is_generated_from_the_stored_runs():
    lines = [json.loads(x) for x in (ROOT / "chapters/results/runs.jsonl").read_text().splitlines() if x.strip()]
    page = results_page("# Results\n\nprose\n\n<!-- results-table: here -->\n", ROOT)
    assert "<!-- results-table" not in page and "prose" in page
    assert f"({len(lines)} runs;" in page
    rows = [x for x in page.splitlines() if x.startswith("| cifar")]
    assert {(r.split(" | ")[0][2:]) for r in rows} == {x["dataset"] for x in lines}


def test_landing_page_lists_a_new_chapter_by_itself():
    text = "- [Chapter 00](00_a.ipynb): one line\n<!-- chapter-list: ... -->\nafter"
    out = landing_page(text, {"00_a.ipynb": "Chapter 00", "08_new.ipynb": "Chapter 08 — New"})
    assert out == "- [Chapter 00](00_a.ipynb): one line\n- [Chapter 08 — New](08_new.ipynb)\nafter"


def test_stage_picks_up_every_chapter(tmp_path):
    root = tmp_path / "repo"
    (root / "chapters" / "results").mkdir(parents=True)
    (root / "book").mkdir()
    for f in ("index.md", "results.md", "references.bib", "conf.py"):
        (root / "book" / f).write_text((ROOT / "book" / f).read_text())
    (root / "chapters/results/runs.jsonl").write_text("")
    for name in ("00_tour_and_yardstick", "08_new_chapter"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Chapter {name[:2]} — T")]),
                       root / "chapters" / f"{name}.ipynb")
    problems = stage(root, tmp_path / "src")
    assert problems == []
    assert sorted(p.name for p in (tmp_path / "src").glob("*.ipynb")) == ["00_tour_and_yardstick.ipynb",
                                                                          "08_new_chapter.ipynb"]
    assert "- [Chapter 08 — T](08_new_chapter.ipynb)" in (tmp_path / "src" / "index.md").read_text()


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "sslkit.book", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_refuses_bad_output_folders_before_any_work(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("keep me")
    for args in (["build", "--out", str(tmp_path / "file.txt")], ["build", f"--out={tmp_path / 'mine'}"]):
        r = _cli(*args)
        assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("error: --out ")
    assert (tmp_path / "mine" / "notes.md").read_text() == "keep me"
    r = _cli("build", "--no-such-option")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr
