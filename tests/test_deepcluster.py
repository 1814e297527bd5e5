import pytest
import torch

import sslkit as sk


def _images(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)


def _cfg(**kw):
    cfg = sk.TrainConfig(method="deepcluster", epochs=3, batch_size=30, lr=0.05, knn_every=0, device="cpu")
    cfg.params = sk.METHODS["deepcluster"].Params(num_clusters=6, pca_dim=8, mlp_hidden=32, **kw)
    return cfg


def test_recluster_is_pca_whitening_then_kmeans():
    """Against references: the stored map is scikit-learn's PCA with whitening (up to the sign of
    each direction), the whitened features are L2-normalised, every image's label is its nearest
    centroid (brute force), and the centroids are the means of their clusters (Lloyd's fixed point);
    new images are assigned to the same clusters."""
    import numpy as np
    from sklearn.decomposition import PCA

    images = _images()
    m = sk.build_method(_cfg(kmeans_iters=100), len(images))
    info = m.recluster(images, seed=3)
    feats = m.cluster_features(images)
    pca = PCA(8, svd_solver="full").fit(feats.double().numpy())
    var = pca.explained_variance_ * (len(feats) - 1) / len(feats)  # scikit-learn divides by n - 1
    want = pca.components_.T / np.sqrt(var + 1e-5)  # whitening: eigenvalue power -0.5 (eps 1e-5)
    got = m.whiten_matrix.double().numpy()
    signs = np.sign((got * want).sum(0))  # each direction is defined up to its sign
    assert np.allclose(got * signs, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    assert np.allclose(m.whiten_mean.numpy(), pca.mean_, atol=1e-5)
    x = torch.nn.functional.normalize((feats - m.whiten_mean) @ m.whiten_matrix, dim=1)
    d = torch.cdist(x.double(), m.centroids.double())
    assert torch.equal(m.labels, d.argmin(1))
    for c in range(6):
        assert torch.allclose(m.centroids[c].double(), x[m.labels == c].double().mean(0), atol=1e-5)
    assert torch.equal(m.predict_clusters(images)[0], m.labels)
    assert info["used_clusters"] == 6 and "nmi_prev" not in info
    assert "nmi_prev" in m.recluster(images, seed=4)


def test_head_is_reinitialised_each_epoch_and_training_runs():
    images = _images()
    cfg = _cfg()
    sk.seed_everything(0)
    m = sk.build_method(cfg, len(images))
    truth = torch.arange(len(images)) % 6
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None, true_labels=truth)
    assert len(hist) == 3 and all("cluster_entropy" in h for h in hist)
    from sklearn.metrics import normalized_mutual_info_score

    assert hist[-1]["nmi_true"] == pytest.approx(normalized_mutual_info_score(truth.numpy(), m.labels.numpy()),
                                                 abs=1e-9)
    assert "nmi_prev" in hist[1]
    w = m.head.weight.clone()
    ctx = sk.EpochContext(images=images, epoch=3, device=torch.device("cpu"), cfg=cfg, num_samples=len(images))
    m.on_epoch_start(ctx)
    assert not torch.equal(w, m.head.weight)


def test_uniform_sampling_order():
    images = _images()
    m = sk.build_method(_cfg(), len(images))
    m.labels.copy_(torch.cat([torch.zeros(100), torch.arange(20) % 5 + 1]).long())
    ctx = sk.EpochContext(images=images, epoch=0, device=torch.device("cpu"), cfg=None, num_samples=len(images))
    order = m.sample_order(ctx)
    counts = torch.bincount(m.labels[order], minlength=6)
    assert len(order) == 120 and (counts - 20).abs().max() <= 1
    m.params.uniform_sampling = False
    assert sorted(m.sample_order(ctx).tolist()) == list(range(120))


def test_sobel_parameter_builds_the_sobel_input():
    """--params.sobel puts DeepCluster's fixed Sobel filters in front of the network: the network sees
    the two gradient images of the grey image (a closed form: a constant image has none)."""
    cfg = _cfg(sobel=True)
    m = sk.build_method(cfg, 10)
    assert any(isinstance(layer, sk.Sobel) for layer in m.backbone.stem)
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert m.backbone.stem[-1](flat)[..., 1:-1, 1:-1].abs().max() == 0


def test_recluster_every_keeps_labels_and_classifier_between_reclusterings():
    images = _images()
    cfg = _cfg(recluster_every=2)
    cfg.epochs = 4
    m = sk.build_method(cfg, len(images))
    labels_seen, heads_seen = [], []

    def record(loop, record):
        labels_seen.append(m.labels.clone())
        heads_seen.append(m.head.weight.clone())
    hist = sk.fit(m, images, cfg, torch.device("cpu"), log=None, callbacks=[sk.LambdaCallback(on_epoch_end=record)])
    assert ["cluster_entropy" in h for h in hist] == [True, False, True, False]  # k-means at epochs 1 and 3
    assert torch.equal(labels_seen[0], labels_seen[1]) and not torch.equal(labels_seen[1], labels_seen[2])
    assert not torch.equal(heads_seen[0], heads_seen[1])  # epoch 2 trained the same classifier on
    assert m.epoch_started == 3 and m.reinitialized_parameters() == []  # its momentum is kept in epoch 4
    with pytest.raises(sk.ConfigError, match="recluster_every"):
        sk.validate(_cfg(recluster_every=0))
