"""A static HTML page of clusters: one file and a folder of thumbnails, opened in a browser
without a server (``python -m sslkit.predict`` writes it as ``gallery/index.html``).

Clusters come largest first, each with its size, its mean confidence and up to
``per_cluster`` thumbnails (the images the method is most confident about first); every
thumbnail is a PNG in ``thumbs/`` beside the page, referenced by a relative path.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import torch

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.3em}h2{font-size:1em;margin:1.2em 0 .4em}p.meta{color:#555;font-size:.9em}
.grid{display:flex;flex-wrap:wrap;gap:4px}.grid figure{margin:0;text-align:center;font-size:.65em;width:72px}
.grid img{width:64px;height:64px;image-rendering:pixelated;border:1px solid #ccc;background:#fff}
figcaption{overflow:hidden;white-space:nowrap;text-overflow:ellipsis}"""


def _thumbnail(image: torch.Tensor, path: Path, side: int = 96) -> None:
    """A PNG of one uint8 (3, H, W) image, at most ``side`` pixels wide."""
    from PIL import Image

    img = Image.fromarray(image.permute(1, 2, 0).contiguous().cpu().numpy())
    if img.width > side:
        img = img.resize((side, side), Image.BILINEAR)
    img.save(path)


def write_gallery(folder: Path, clusters: torch.Tensor, confidence: torch.Tensor, names: list, fetch,
                  title: str, note: str = "", per_cluster: int = 36) -> Path:
    """Write ``folder/index.html`` and ``folder/thumbs/*.png``; returns the page's path.

    clusters, confidence: (N,) each image's cluster and confidence (NaN: none);
    fetch(positions) -> uint8 (n, 3, H, W): the images to draw (decoded only for the thumbnails).
    """
    folder = Path(folder)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    ids, sizes = torch.unique(clusters, return_counts=True)
    order = sorted(zip(ids.tolist(), sizes.tolist()), key=lambda t: (-t[1], t[0]))
    shown: dict[int, list[int]] = {}
    for c, _ in order:
        members = (clusters == c).nonzero().flatten()
        conf = torch.nan_to_num(confidence[members], nan=-1.0)
        shown[c] = members[torch.argsort(-conf, stable=True)[:per_cluster]].tolist()
    positions = sorted(p for ps in shown.values() for p in ps)
    for start in range(0, len(positions), 256):
        chunk = positions[start:start + 256]
        for p, image in zip(chunk, fetch(chunk)):
            _thumbnail(image, folder / "thumbs" / f"{p:07d}.png")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='meta'>{len(names)} images in {len(order)} clusters, largest first. "
             f"{html.escape(note)}</p>"]
    for c, size in order:
        conf = confidence[clusters == c]
        mean = conf[~torch.isnan(conf)].mean().item() if bool((~torch.isnan(conf)).any()) else math.nan
        extra = f", mean confidence {mean:.2f}" if not math.isnan(mean) else ""
        parts.append(f"<h2 id='c{c}'>cluster {c}: {size} image{'s' if size != 1 else ''}{extra}</h2><div class='grid'>")
        for p in shown[c]:
            cap = html.escape(str(names[p]))
            tip = cap + ("" if math.isnan(float(confidence[p])) else f" ({float(confidence[p]):.2f})")
            parts.append(f"<figure><img src='thumbs/{p:07d}.png' alt='{cap}' title='{tip}' loading='lazy'>"
                         f"<figcaption>{cap}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>\n")
    page = folder / "index.html"
    page.write_text("\n".join(parts))
    return page
