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
    images = _images()
    m = sk.build_method(_cfg(), len(images))
    info = m.recluster(images, seed=3)
    feats = m.cluster_features(images)
    x = sk.fit_pca(feats, 8).transform(feats)
    ref = sk.kmeans(x, 6, iters=m.params.kmeans_iters, seed=3)
    assert torch.equal(m.labels, ref.labels)
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
    assert hist[-1]["nmi_true"] == sk.nmi(m.labels, truth)
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


def test_presets_resolve():
    cfg = sk.TrainConfig(method="deepcluster")
    sk.apply_preset(cfg, "cifar10")
    assert cfg.params.sobel and cfg.backbone == "alexnet" and cfg.params.pca_dim == 256
    assert cfg.schedule == "constant"  # the official code never decays the rate (fresh classifier each epoch)
    m = sk.build_method(cfg, 10)
    assert m.backbone(torch.rand(2, 3, 32, 32)).shape == (2, 256)
