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
