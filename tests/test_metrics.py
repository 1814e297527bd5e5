import math

import pytest
import torch

import sslkit as sk


def test_nmi_closed_forms():
    assert sk.nmi([0, 0, 1, 1], [5, 5, 9, 9]) == pytest.approx(1.0)  # same partition, other names
    assert sk.nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)  # independent
    # hand computation: MI = (2/3) ln 2, H(a) = ln 2, H(b) = ln 3, arithmetic normalisation
    expected = (2 / 3 * math.log(2)) / (0.5 * (math.log(2) + math.log(3)))
    assert sk.nmi([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(expected, rel=1e-12)
    assert sk.mutual_information([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(2 / 3 * math.log(2))


def test_ari_closed_forms():
    assert sk.ari([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]) == pytest.approx(1.0)
    # all pairs split: sum_ij = 0, sum_a = sum_b = 2, C(4,2) = 6 -> (0 - 2/3) / (2 - 2/3)
    assert sk.ari([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_hungarian_accuracy_on_permutations():
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 7, (500,), generator=g)
    perm = torch.randperm(7, generator=g)
    assert sk.hungarian_accuracy(perm[true], true) == pytest.approx(100.0)
    mapping = sk.hungarian_match(perm[true], true)
    assert all(perm[c] == k for c, k in ((c, k) for k, c in mapping.items()))
    # corrupt 50 labels to a wrong class: accuracy is exactly 90 %
    pred = perm[true].clone()
    pred[:50] = perm[(true[:50] + 1) % 7]
    assert sk.hungarian_accuracy(pred, true) == pytest.approx(90.0)


def test_hungarian_with_more_clusters_than_classes():
    # 3 clusters, 2 classes: one cluster stays unmatched and counts as wrong
    assert sk.hungarian_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1]) == pytest.approx(100 * 4 / 6)


def test_cluster_report_detects_collapse():
    rep = sk.cluster_report(torch.zeros(100, dtype=torch.long), 10)
    assert rep["entropy"] == 0 and rep["effective_clusters"] == 1 and rep["largest_fraction"] == 1
    assert rep["used_clusters"] == 1
    uniform = sk.cluster_report(torch.arange(100) % 10, 10)
    assert uniform["normalized_entropy"] == pytest.approx(1.0)
    assert uniform["effective_clusters"] == pytest.approx(10.0)
    assert uniform["sizes"] == [10] * 10


def _knn_reference(train, ytr, test, k, t, c):
    """Loop-by-loop weighted kNN, the textbook definition."""
    train = train / train.norm(dim=1, keepdim=True)
    out = []
    for q in test:
        q = q / q.norm()
        sims = [(float(q @ x), int(y)) for x, y in zip(train, ytr)]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * c
        for s, y in sims[:k]:
            votes[y] += math.exp(s / t)
        out.append(max(range(c), key=lambda i: votes[i]))
    return torch.tensor(out)


def test_knn_matches_brute_force_reference():
    g = torch.Generator().manual_seed(1)
    train, test = torch.randn(120, 8, generator=g), torch.randn(30, 8, generator=g)
    ytr = torch.randint(0, 4, (120,), generator=g)
    for k in (1, 5, 50):
        pred = sk.knn_predict(train, ytr, test, k=k, temperature=0.1, num_classes=4, chunk_size=7)
        assert torch.equal(pred, _knn_reference(train, ytr, test, k, 0.1, 4))


def test_knn_accuracy_on_separated_clusters():
    centres = torch.eye(4) * 10
    y = torch.arange(200) % 4
    x = centres[y] + torch.randn(200, 4) * 0.5
    assert sk.knn_accuracy(x[:150], y[:150], x[150:], y[150:], k=20) == pytest.approx(100.0)


def test_linear_probe_separates_linearly_separable_data():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 3, generator=g)
    x = torch.randn(600, 16, generator=g)
    y = (x @ w).argmax(1)
    res = sk.linear_probe(x[:500], y[:500], x[500:], y[500:])
    assert res["train_acc"] > 97 and res["test_acc"] > 93
    # random labels cannot be predicted on held-out data
    yr = torch.randint(0, 3, (600,), generator=g)
    assert sk.linear_probe(x[:500], yr[:500], x[500:], yr[500:])["test_acc"] < 55


def test_usage_histogram_and_collapse_statistics_by_hand():
    from sslkit.eval.metrics import collapse_statistics, usage_histogram

    # K=4, N=8, fair share 2: sizes 0, 1, 3, 4 -> shares 0, 0.5, 1.5, 2.0
    assign = [1, 2, 2, 2, 3, 3, 3, 3]
    assert usage_histogram([0, 1, 3, 4]) == [1, 0, 1, 1, 1, 0]  # empty | <1/2 | <1 | <2 | <4 | >=4
    stats = collapse_statistics(assign, 4)
    p = [1 / 8, 3 / 8, 4 / 8]
    h = -sum(q * math.log(q) for q in p)
    assert stats["cluster_entropy"] == pytest.approx(h / math.log(4))
    assert stats["effective_clusters"] == pytest.approx(math.exp(h))
    assert stats["used_clusters"] == 3 and stats["largest_cluster"] == 0.5
    assert stats["cluster_usage_hist"] == [1, 0, 1, 1, 1, 0]
    # a total collapse: one cluster holds everything (K times its share), the rest empty
    assert collapse_statistics([0] * 10, 5)["cluster_usage_hist"] == [4, 0, 0, 0, 0, 1]
    # an equipartition: every cluster exactly at its share
    assert collapse_statistics(list(range(5)) * 2, 5)["cluster_usage_hist"] == [0, 0, 0, 5, 0, 0]


def test_knn_refuses_inputs_that_would_give_a_meaningless_accuracy():
    import pytest

    f, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match="10 training features but 9 training labels"):
        sk.knn_accuracy(f, y[:9], f, y)
    with pytest.raises(ValueError, match="10 test features but 8 test labels"):
        sk.knn_accuracy(f, y, f, y[:8])
    with pytest.raises(ValueError, match="k=0"):
        sk.knn_accuracy(f, y, f, y, k=0)  # before: chance accuracy, silently
    with pytest.raises(ValueError, match="same network"):
        sk.knn_accuracy(f, y, torch.randn(10, 5), y)
    with pytest.raises(ValueError, match="empty"):
        sk.knn_accuracy(f[:0], y[:0], f, y)


def test_plot_curves_names_curves_and_axes_in_words():
    import matplotlib

    matplotlib.use("Agg")
    import sslkit as sk

    history = [{"epoch": e, "loss": 1.0 / e, "knn_acc": 10.0 * e} for e in range(1, 4)]
    fig = sk.plot_curves(history, {"loss": "training loss", "knn_acc": "kNN accuracy"}, ylabel="value")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss", "kNN accuracy"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "value")
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[1.0, 0.5, 1 / 3], [10.0, 20.0, 30.0]]
    fig = sk.plot_curves(history, ["loss"])  # a list still works: the key is the legend
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["loss"]
