import pytest
import torch

import sslkit as sk


@pytest.mark.parametrize("name,dim", [("convnet", 256), ("alexnet", 256), ("resnet18", 512)])
def test_backbones_any_resolution(name, dim):
    net = sk.build_backbone(name)
    for size in (32, 16):
        assert net(torch.rand(2, 3, size, size)).shape == (2, dim)
    assert net.dim == dim


def test_sobel_filters():
    sobel = sk.Sobel()
    flat = torch.full((1, 3, 8, 8), 0.5)
    out = sobel(flat)
    assert out.shape == (1, 2, 8, 8)
    assert torch.allclose(out[..., 1:-1, 1:-1], torch.zeros(1, 2, 6, 6))  # no edges inside
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)  # grey ramp, +1 per column
    out = sobel(ramp)
    # horizontal gradient filter [[1,0,-1],[2,0,-2],[1,0,-1]] on a +1 ramp gives -8; vertical 0
    assert torch.allclose(out[0, 0, 1:-1, 1:-1], torch.full((6, 6), -8.0))
    assert torch.allclose(out[0, 1, 1:-1, 1:-1], torch.zeros(6, 6))


def test_sobel_backbone_takes_rgb():
    net = sk.build_backbone("convnet", sobel=True)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 256)


def test_extract_features_uint8_and_normalize():
    net = sk.build_backbone("convnet")
    imgs = (torch.rand(10, 3, 32, 32) * 255).to(torch.uint8)
    f = sk.extract_features(net, imgs, batch_size=3, normalize=True)
    assert f.shape == (10, 256)
    assert torch.allclose(f.norm(dim=1), torch.ones(10), atol=1e-5)
    assert net.training  # mode restored


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        sk.build_backbone("vgg")


def test_bf16_on_cpu_runs_the_convolutions_in_bf16_and_returns_fp32():
    import sslkit as sk

    torch.manual_seed(0)
    b = sk.build_backbone("convnet")
    x = torch.rand(8, 3, 32, 32)
    seen = []
    b.body[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    ref = b(x)
    b.autocast_dtype = torch.bfloat16
    out = b(x)
    assert seen == [torch.float32, torch.bfloat16] and out.dtype == torch.float32
    assert not torch.equal(out, ref) and torch.allclose(out, ref, rtol=0.05, atol=0.05)  # bf16 rounding, no more
    b.eval()
    b(x)
    assert seen[-1] == torch.float32  # evaluation stays in fp32


def test_fit_with_bf16_on_cpu_trains_swav_and_evaluates_in_fp32():
    """Before: --precision=bf16 was ignored off CUDA; wrapping the whole step in CPU autocast
    crashed the kNN monitor on a dtype mismatch. Now the backbone alone runs in bf16."""
    import sslkit as sk

    g = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    labels = torch.arange(64) % 4
    cfg = sk.TrainConfig(method="swav", epochs=2, batch_size=32, knn_every=1, knn_k=5, device="cpu",
                         precision="bf16")
    cfg.params = sk.METHODS["swav"].Params(proj_hidden=16, proj_dim=8, num_prototypes=8, freeze_prototypes_steps=1)
    m = sk.build_method(cfg, len(images))
    dtypes = []
    m.backbone.body[0].register_forward_hook(lambda mod, i, o: dtypes.append((mod.training, o.dtype)))
    hist = sk.fit(m, images, cfg, log=None, eval_data=(images, labels, images, labels))
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist) and 0 <= hist[-1]["knn_acc"] <= 100
    assert {d for t, d in dtypes if t} == {torch.bfloat16} and {d for t, d in dtypes if not t} == {torch.float32}


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            return {w for line in f if line.startswith("flags") for w in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_bf16_instructions():
    """``auto`` (the lab presets) must not pick bf16 on a CPU that would emulate it: the
    reference is the kernel's list of CPU features, not torch's own check."""
    import pytest

    import sslkit as sk

    flags = _cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags on this system")
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert sk.native_bf16("cpu") == native
    assert sk.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    for fixed in ("fp32", "bf16", "fp16"):
        assert sk.resolve_precision(fixed, torch.device("cpu")) == fixed
    assert not sk.native_bf16("meta")  # neither CUDA nor a CPU: never bf16 by default


def test_fit_records_the_precision_auto_resolved_to():
    import sslkit as sk

    images = (torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    cfg = sk.TrainConfig(method="npid", epochs=1, batch_size=32, knn_every=0, device="cpu", precision="auto")
    cfg.params = sk.METHODS["npid"].Params(dim=8, num_noise=16)
    m = sk.build_method(cfg, len(images))
    hist = sk.fit(m, images, cfg, log=None)
    want = sk.resolve_precision("auto", torch.device("cpu"))
    assert hist[0]["precision"] == want
    assert m.backbone.autocast_dtype == (torch.bfloat16 if want == "bf16" else None)


def test_auto_precision_on_cuda_needs_bf16_tensor_cores(monkeypatch):
    """torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated (a T4 or a
    V100: compute capability 7.x); auto must pick bf16 from Ampere (8.0) on only."""
    from types import SimpleNamespace

    import sslkit as sk

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", None)
    for major, want in ((7, "fp32"), (8, "bf16"), (9, "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i, m=major: SimpleNamespace(major=m))
        assert sk.resolve_precision("auto", torch.device("cuda", 0)) == want


@pytest.mark.parametrize("name", ["convnet", "alexnet", "resnet18"])
def test_channels_last_backbone_equals_the_nchw_network_in_float64(name):
    """The backbones keep weights and activations channels-last (speed); the reference is the
    same network computed on ordinary NCHW tensors. In float64 no rounding can flip a max-pool
    or ReLU near a tie, so features and every weight gradient must agree to 1e-9."""
    import copy

    torch.manual_seed(0)
    net = sk.build_backbone(name).double().train()
    ref = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    convs = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert all(m.weight.is_contiguous() for m in ref.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(6, 3, 32, 32, dtype=torch.float64)
    probe = torch.randn(6, net.dim, dtype=torch.float64)
    out = net(x)
    out_ref = ref.pool(ref.body(ref.stem(x.contiguous()))).flatten(1)  # NCHW throughout
    torch.testing.assert_close(out, out_ref, rtol=1e-9, atol=1e-12)
    (out * probe).sum().backward()
    (out_ref * probe).sum().backward()
    for (n, a), b in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=lambda e: f"{n}: {e}")
