"""Figures you can move: chapters 02, 03 and 05 let the reader slide N, K, lambda or epsilon.

Every value is computed here, in Python, with the library (``exact_transport``, ``sinkhorn``,
``swav_codes``), on a grid of slider positions; the grid is stored in the figure, and
Vega-Lite (through Altair) draws the position a slider picks, in the browser. So the figure
moves without a kernel: in JupyterLab, in VS Code and on the book's website.

Each explorer returns an :class:`InteractiveFigure`. Its output in a notebook holds the
Vega-Lite spec (drawn natively by JupyterLab), a PNG of the first slider positions (for
viewers that draw no JavaScript, such as a code host's notebook preview) and a line of text.
The ``*_grid`` functions return the numbers alone, for tests and for readers who want them.
"""

from __future__ import annotations

import base64
import json
import math

import torch

from .transport import exact_transport, sinkhorn, swav_codes

__all__ = ["InteractiveFigure", "VEGALITE_MIME", "transport_grid", "transport_explorer", "sinkhorn_grid",
           "sinkhorn_explorer", "swav_codes_grid", "swav_codes_explorer"]

VEGALITE_MIME = "application/vnd.vegalite.v5+json"  # what JupyterLab 4 draws natively (Altair 5)
CLUSTERS = "tableau10"


def _altair():
    import altair as alt

    return alt


class InteractiveFigure:
    """A Vega-Lite chart whose data were computed in Python: ``chart`` is the Altair object,
    ``rows`` the grid of slider positions it draws from (one dict per position)."""

    def __init__(self, chart, rows: list[dict], description: str):
        self.chart = chart
        self.rows = rows
        self.description = description

    @property
    def spec(self) -> dict:
        return self.chart.to_dict()

    def png(self, scale: float = 1.0) -> bytes:
        """The figure at its first slider positions, drawn by vl-convert (no browser), in 128 colours."""
        import io

        import vl_convert
        from PIL import Image

        png = Image.open(io.BytesIO(vl_convert.vegalite_to_png(self.spec, scale=scale))).convert("RGB")
        out = io.BytesIO()
        png.quantize(colors=128).save(out, "PNG", optimize=True)  # flat colours: a tenth of the bytes
        return out.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {VEGALITE_MIME: self.spec, "image/png": base64.b64encode(self.png()).decode("ascii"),
                "text/plain": self.description}

    def __repr__(self) -> str:
        return self.description


def _r(values, digits: int) -> list:
    """Rounded plain numbers, whole ones as integers (the grid is stored in the page: keep it short)."""
    out = [round(float(v), digits) for v in torch.as_tensor(values).reshape(-1).tolist()]
    return [int(v) if v.is_integer() else v for v in out]


def _grid_data(alt, rows: list[dict]):
    """The grid as one JSON string that Vega parses: a notebook stores it on one line (nbformat
    would write a list with one number per line, three times the bytes)."""
    return alt.InlineData(values=json.dumps(rows, separators=(",", ":")), format=alt.DataFormat(type="json"))


def _slider(alt, name: str, values, value, label: str):
    """A slider over the grid's values of one parameter, which must be evenly spaced (a slider
    moves in equal steps), starting at ``value``."""
    values = sorted(values)
    step = round(values[1] - values[0], 6) if len(values) > 1 else 1
    if any(abs(b - a - step) > 1e-6 for a, b in zip(values, values[1:])):
        raise ValueError(f"{name}: a slider needs evenly spaced values, got {values}")
    return alt.param(name=name, value=value, bind=alt.binding_range(min=values[0], max=values[-1], step=step,
                                                                    name=label))


def _start(values):
    """The slider's first position: the middle of the grid (the lower middle of an even one)."""
    return sorted(values)[(len(values) - 1) // 2]


def _flat_cells(chart, field: str, columns: int):
    """Rows of one array field, numbered: ``row`` and ``col`` of a (rows x ``columns``) matrix."""
    return (chart.transform_flatten([field]).transform_window(i="row_number()")
            .transform_calculate(row=f"floor((datum.i - 1) / {columns})", col=f"(datum.i - 1) % {columns}"))


def _caption(chart, expr: str, width: int):
    """One line of text computed from the picked grid row, at the top left of the figure."""
    alt = _altair()
    return chart.transform_calculate(text=expr).mark_text(align="left", baseline="middle", fontSize=13).encode(
        text="text:N", x=alt.value(0), y=alt.value(9)).properties(width=width, height=18, view={"stroke": None})


# ---------------------------------------------------------------- chapter 02: the exact plan

def transport_grid(make_points, n_values=(30, 60, 90, 120), k_values=(2, 3, 4, 5), imbalance=(1, 2, 3, 4, 5),
                   seed: int = 1) -> list[dict]:
    """For each (N, K, imbalance): N points from K blobs (blob 0 ``imbalance`` times the size of
    each other blob, ``make_points(n=, k=, weights=, seed=)`` as ``labdata.make_blobs``), scores
    minus half the squared distance to each blob's mean, the greedy labels (argmax) and the exact
    equipartitioned plan (``exact_transport`` of minus the log-softmax). Rows of ``q`` (N * Q) are
    sorted by blob, then by the plan's label; ``bs`` is the blob of each sorted row."""
    rows = []
    for n in n_values:
        for k in k_values:
            for w in imbalance:
                x, y = make_points(n=n, k=k, weights=[float(w)] + [1.0] * (k - 1), seed=seed)
                centres = torch.stack([x[y == j].mean(0) for j in range(k)])
                scores = -torch.cdist(x, centres) ** 2 / 2
                plan, _ = exact_transport(-torch.log_softmax(scores, 1))
                ot, greedy = plan.argmax(1), scores.argmax(1)
                order = torch.argsort(y * k + ot, stable=True)
                rows.append({"n": n, "k": k, "w": w, "x": _r(x[:, 0], 2), "y": _r(x[:, 1], 2), "b": y.tolist(),
                             "g": greedy.tolist(), "o": ot.tolist(), "q": _r(n * plan[order], 3),
                             "bs": y[order].tolist()})
    return rows


def transport_explorer(make_points, n_values=(30, 60, 90, 120), k_values=(2, 3, 4, 5), imbalance=(1, 2, 3, 4, 5),
                       seed: int = 1) -> InteractiveFigure:
    """Chapter 02: blobs of unequal size labelled greedily and by the exact plan, as N, K and the
    imbalance move."""
    alt = _altair()
    sn = _slider(alt, "n_points", n_values, _start(n_values), "points N ")
    sk_ = _slider(alt, "k_clusters", k_values, _start(k_values), "clusters K ")
    sw = _slider(alt, "imbalance", imbalance, _start(imbalance), "blob 0 / each other blob (size) ")
    rows = transport_grid(make_points, n_values, k_values, imbalance, seed)
    pick = alt.Chart(_grid_data(alt, rows)).transform_filter(
        "datum.n == n_points && datum.k == k_clusters && datum.w == imbalance")
    points = pick.transform_flatten(["x", "y", "b", "g", "o"])
    cluster = alt.Scale(scheme=CLUSTERS, domain=list(range(max(k_values))))

    def scatter(field, title):
        return points.mark_point(filled=True, size=22).encode(
            x=alt.X("x:Q", title="first coordinate"), y=alt.Y("y:Q", title="second coordinate"),
            color=alt.Color(f"{field}:N", scale=cluster, title="cluster"),
            shape=alt.Shape("b:N", title="blob", legend=None)).properties(width=200, height=190, title=title)

    sizes = points.transform_fold(["g", "o"], as_=["rule", "cluster"]).transform_calculate(
        rule="datum.rule == 'g' ? 'greedy argmax' : 'equipartition'").mark_bar().encode(
        x=alt.X("cluster:O", title="cluster"), xOffset=alt.XOffset("rule:N", sort="descending"),
        y=alt.Y("count():Q", title="points in the cluster"),
        color=alt.Color("rule:N", title="labelling", sort="descending",
                        scale=alt.Scale(range=["#bbbbbb", "#4c78a8"]), legend=alt.Legend(orient="bottom")))
    fair = pick.transform_calculate(share="datum.n / datum.k").mark_rule(strokeDash=[4, 3]).encode(y="share:Q")
    rows_y = alt.Y("row:O", title="point (grouped by blob, then by its cluster)", axis=alt.Axis(labels=False,
                                                                                               ticks=False))
    strip = _flat_cells(pick, "bs", 1).mark_rect().encode(
        x=alt.X("col:O", title="blob", axis=alt.Axis(labels=False, ticks=False)), y=rows_y,
        color=alt.Color("bs:N", scale=cluster, legend=None)).properties(width=12, height=220)
    heat = _flat_cells(pick, "q", "datum.k").mark_rect().encode(
        x=alt.X("col:O", title="cluster"), y=alt.Y("row:O", axis=None),
        color=alt.Color("q:Q", title="N·Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")))
    figure = alt.vconcat(
        alt.hconcat(scatter("g", "greedy argmax (shape: blob)"), scatter("o", "equipartition: the exact plan")),
        alt.hconcat(alt.hconcat(strip, heat.properties(width=110, height=220), spacing=2).properties(
                        title="the plan N·Q, a row per point"),
                    (sizes + fair).properties(width=220, height=220, title="cluster sizes (dashed: N/K)")),
    ).add_params(sn, sk_, sw).resolve_scale(color="independent")
    return InteractiveFigure(figure, rows, f"Interactive figure (Vega-Lite): greedy and equipartitioned labels of blobs, "
                                     f"N in {list(n_values)}, K in {list(k_values)}, imbalance in {list(imbalance)}.")


# ---------------------------------------------------------------- chapter 03: lambda

def _entropy(plan: torch.Tensor) -> float:
    p = plan.double().reshape(-1)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def sinkhorn_grid(log_p: torch.Tensor, lams, max_iters: int = 1000, tol: float = 1e-6) -> list[dict]:
    """``sinkhorn(log_p, lam)`` for each lambda: N * Q (rows sorted by the network's preferred
    cluster, then by its probability), the entropy H(Q), the argmax labels and their cluster
    sizes, the L1 error of the cluster marginals and the iterations it took."""
    n, k = log_p.shape
    best, top = log_p.max(1)
    order = torch.argsort(top * 10 - best.exp(), stable=True)
    rows = []
    for lam in lams:
        res = sinkhorn(log_p, float(lam), max_iters=max_iters, tol=tol)
        labels = res.plan.argmax(1)
        rows.append({"l": round(math.log10(lam), 3), "lam": float(lam), "q": _r(n * res.plan[order], 3),
                     "lab": labels[order].tolist(), "sizes": torch.bincount(labels, minlength=k).tolist(),
                     "h": round(_entropy(res.plan), 5), "err": max(float(res.marginal_error), 1e-9),
                     "it": res.iterations})
    return rows


def sinkhorn_explorer(log_p: torch.Tensor, lams=None, max_iters: int = 1000, tol: float = 1e-6) -> InteractiveFigure:
    """Chapter 03: lambda from 1 to 500 (log10 lambda 0, 0.1, ..., 2.7): the plan, its entropy,
    the hard labels and the marginal error of ``sinkhorn``."""
    alt = _altair()
    lams = [10 ** (j / 10) for j in range(28)] if lams is None else list(lams)
    steps = [round(math.log10(x), 3) for x in lams]
    lam = _slider(alt, "log10_lambda", steps, min(steps, key=lambda s: abs(s - 1.4)),  # SeLa's 25
                  f"log10 λ (λ from {lams[0]:.3g} to {lams[-1]:.3g}) ")
    rows = sinkhorn_grid(log_p, lams, max_iters, tol)
    n, k = log_p.shape
    data = alt.Chart(_grid_data(alt, rows))
    pick = data.transform_filter("abs(datum.l - log10_lambda) < 1e-3")
    cells = _flat_cells(pick, "q", k)
    heat = cells.mark_rect().encode(
        x=alt.X("col:O", title="cluster"), y=alt.Y("row:O", title="image (sorted by its most likely cluster)",
                                                  axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("q:Q", title="N·Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")))
    dots = _flat_cells(pick, "lab", 1).transform_calculate(row="datum.i - 1").mark_point(
        color="white", size=12, filled=True).encode(x="lab:O", y="row:O")
    sizes = _flat_cells(pick, "sizes", 1).transform_calculate(cluster="datum.i - 1").mark_bar().encode(
        x=alt.X("cluster:O", title="cluster"), y=alt.Y("sizes:Q", title="images with this hard label"))
    fair = alt.Chart(alt.InlineData(values=[{"share": n / k}])).mark_rule(strokeDash=[4, 3]).encode(y="share:Q")
    xlam = alt.X("lam:Q", title="λ (log scale)", scale=alt.Scale(type="log"))

    def curve(field, title, scale):
        line = data.mark_line().encode(x=xlam, y=alt.Y(f"{field}:Q", title=title, scale=scale))
        return (line + pick.mark_point(color="#e45756", size=70, filled=True).encode(x=xlam, y=f"{field}:Q")
                ).properties(width=215, height=150)

    hq = curve("h", "entropy H(Q) (nats)", alt.Scale(domain=[math.log(n), math.log(n * k)]))
    err = curve("err", "L1 error of the cluster marginals", alt.Scale(type="log"))
    caption = _caption(pick, "'λ = ' + format(datum.lam, '.3~r') + ': ' + datum.it + ' Sinkhorn iterations, "
                             "marginal error ' + format(datum.err, '.1e') + ', H(Q) = ' + format(datum.h, '.3f')", 520)
    figure = alt.vconcat(
        caption,
        alt.hconcat((heat + dots).properties(width=120, height=260, title="the plan N·Q (dot: argmax)"),
                    (sizes + fair).properties(width=230, height=260, title="hard labels per cluster (dashed: N/K)")),
        alt.hconcat(hq.properties(title="entropy of the plan"),
                    err.properties(title=f"at most {max_iters} iterations, tolerance {tol:g}")),
    ).add_params(lam)
    return InteractiveFigure(figure, rows, f"Interactive figure (Vega-Lite): sk.sinkhorn on {n} x {k} scores for λ from "
                                     f"{lams[0]:.3g} to {lams[-1]:.3g}: plan, entropy, hard labels, marginal error.")


# ---------------------------------------------------------------- chapter 05: epsilon and iterations

def swav_codes_grid(scores: torch.Tensor, log10_eps, iterations, show: int = 10,
                    order_epsilon: float = 0.05) -> list[dict]:
    """``swav_codes(scores, eps, t)`` for each epsilon (given as log10) and iteration count t (0
    is the plain softmax): the codes of the first ``show`` samples in percent, the mass each
    prototype receives from the batch, the mean normalised code entropy H(q)/ln K, the largest
    prototype's share and the L1 error of the prototype marginals against 1/K. Prototypes are
    ordered by their share of the softmax codes at ``order_epsilon``."""
    b, k = scores.shape
    order = torch.argsort(torch.softmax(scores.float() / order_epsilon, 1).sum(0), descending=True, stable=True)
    rows = []
    for le in log10_eps:
        for t in iterations:
            q = swav_codes(scores, 10 ** le, int(t)).double()
            mass = q.sum(0)[order]
            h = -(q * q.clamp_min(1e-30).log()).sum(1).mean() / math.log(k)
            rows.append({"le": round(float(le), 3), "t": int(t), "eps": 10 ** le,
                         "q": (100 * q[:show][:, order]).round().int().reshape(-1).tolist(), "m": _r(mass, 2),
                         "h": round(float(h), 4), "top": round(float(mass.max()) / b, 4),
                         "err": round(float((mass / b - 1 / k).abs().sum()), 4)})
    return rows


def swav_codes_explorer(scores: torch.Tensor, log10_eps=None, iterations=range(7), show: int = 10) -> InteractiveFigure:
    """Chapter 05: epsilon (log10 from -2 to 0 in steps of 0.25) and the Sinkhorn iterations (0 to
    6): the codes of a batch and how evenly the batch spreads over the prototypes."""
    alt = _altair()
    log10_eps = [-2 + 0.25 * j for j in range(9)] if log10_eps is None else list(log10_eps)
    iterations = list(iterations)
    b, k = scores.shape
    eps = _slider(alt, "log10_epsilon", log10_eps, min(log10_eps, key=lambda e: abs(e + 1.3)), "log10 ε ")  # 0.05
    its = _slider(alt, "iterations", iterations, 3 if 3 in iterations else iterations[0],  # SwAV's 3
                  "Sinkhorn iterations (0: plain softmax) ")
    rows = swav_codes_grid(scores, log10_eps, iterations, show)
    data = alt.Chart(_grid_data(alt, rows))
    pick = data.transform_filter("abs(datum.le - log10_epsilon) < 1e-3 && datum.t == iterations")
    codes = _flat_cells(pick, "q", k).mark_rect().encode(
        x=alt.X("col:O", title="prototype (sorted by its share of the softmax codes)", axis=None),
        y=alt.Y("row:O", title="image"),
        color=alt.Color("q:Q", title="code (%)", scale=alt.Scale(domain=[0, 100], scheme="viridis")))
    mass = _flat_cells(pick, "m", 1).transform_calculate(proto="datum.i - 1").mark_bar().encode(
        x=alt.X("proto:O", title="prototype (same order)", axis=None),
        y=alt.Y("m:Q", title="images' worth of mass", scale=alt.Scale(domainMin=0)))
    fair = alt.Chart(alt.InlineData(values=[{"share": b / k}])).mark_rule(strokeDash=[4, 3]).encode(y="share:Q")
    xeps = alt.X("eps:Q", title="ε (log scale)", scale=alt.Scale(type="log"))
    same_t = data.transform_filter("datum.t == iterations")
    now = pick.mark_point(color="#e45756", size=70, filled=True)
    entropy = (same_t.mark_line().encode(x=xeps, y=alt.Y("h:Q", title="code entropy H(q) / ln K",
                                                         scale=alt.Scale(domain=[0, 1])))
               + now.encode(x=xeps, y="h:Q")).properties(width=215, height=140, title="how soft the codes are")
    balance = (same_t.mark_line().encode(x=xeps, y=alt.Y("top:Q", title="largest prototype's share of the batch",
                                                         axis=alt.Axis(format="%")))
               + now.encode(x=xeps, y="top:Q")).properties(width=215, height=140,
                                                           title=f"how balanced (equal share: 1/K = {1 / k:.0%})")
    caption = _caption(pick, "'ε = ' + format(datum.eps, '.2~r') + ', ' + datum.t + ' iterations: code entropy ' + "
                             "format(datum.h, '.2f') + ' ln K, largest share ' + format(datum.top, '.1%') + "
                             "', marginal error ' + format(datum.err, '.2f')", 500)
    figure = alt.vconcat(
        caption,
        codes.properties(width=500, height=150, title=f"codes q of {show} images over the {k} prototypes"),
        (mass + fair).properties(width=500, height=130,
                                 title=f"mass each prototype receives from the batch of {b} (dashed: B/K)"),
        alt.hconcat(entropy, balance),
    ).add_params(eps, its)
    return InteractiveFigure(figure, rows, f"Interactive figure (Vega-Lite): sk.swav_codes of a batch of {b} over {k} "
                                     f"prototypes for log10 ε in {log10_eps[0]}..{log10_eps[-1]} and "
                                     f"{iterations[0]}..{iterations[-1]} iterations.")
