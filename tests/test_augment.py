import torch

import sslkit as sk
from sslkit import augment as A


def _batch(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_full_crop_without_flip_is_identity():
    x = _batch()
    y = A.random_resized_crop(x, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    assert torch.allclose(y, x, atol=1e-5)


def test_full_crop_with_flip_is_mirror():
    x = _batch()
    y = A.random_resized_crop(x, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    assert torch.allclose(y, x.flip(-1), atol=1e-5)


def test_crop_resizes_and_stays_in_range():
    x = _batch()
    for size in (32, 16):
        y = A.random_resized_crop(x, size, scale=(0.05, 0.3))
        assert y.shape == (6, 3, size, size)
        assert y.min() >= 0 and y.max() <= 1


def test_half_crop_samples_inside_the_image():
    # a constant-per-half image: a crop of area 1/4 must only contain values of the image
    x = torch.zeros(64, 3, 32, 32)
    x[..., 16:] = 1.0
    y = A.random_resized_crop(x, 8, scale=(0.25, 0.25), ratio=(1.0, 1.0), flip_p=0.0)
    assert y.min() >= 0 and y.max() <= 1
    # every crop of half width lies in the left half, the right half or straddles: means in [0, 1]
    assert ((y.mean(dim=(1, 2, 3)) >= 0) & (y.mean(dim=(1, 2, 3)) <= 1)).all()


def test_padding_crop_with_zero_padding_is_identity():
    x = _batch()
    assert torch.equal(A.random_crop_with_padding(x, padding=0), x)
    y = A.random_crop_with_padding(x, padding=4)
    assert y.shape == x.shape


def test_padding_crop_is_a_shift_of_the_padded_image():
    x = _batch(n=1)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    y = A.random_crop_with_padding(x, 4)
    windows = [padded[..., i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
    assert any(torch.equal(y, w) for w in windows)


def test_grayscale_and_jitter():
    x = _batch()
    g = A.random_grayscale(x, p=1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert torch.equal(A.color_jitter(x, p=0.0), x)
    j = A.color_jitter(x, p=1.0)
    assert j.shape == x.shape and j.min() >= 0 and j.max() <= 1 and not torch.allclose(j, x)


def test_hue_rotation_by_zero_is_identity_and_keeps_gray():
    x = _batch()
    assert torch.allclose(A._rotate_hue(x, torch.zeros(6)), x, atol=1e-5)
    gray = A.grayscale(x).expand_as(x)
    assert torch.allclose(A._rotate_hue(gray, torch.full((6,), 1.0)), gray, atol=1e-4)


def test_blur_keeps_constant_images_and_smooths_noise():
    c = torch.full((4, 3, 32, 32), 0.3)
    assert torch.allclose(A.gaussian_blur(c, p=1.0), c, atol=1e-6)
    x = _batch()
    assert A.gaussian_blur(x, p=1.0, sigma=(1.5, 2.0)).std() < x.std()


def test_augment_is_reproducible_and_accepts_uint8():
    imgs = (torch.rand(8, 3, 32, 32) * 255).to(torch.uint8)
    sk.seed_everything(3)
    a = sk.augment_batch(imgs)
    sk.seed_everything(3)
    b = sk.augment_batch(imgs)
    assert torch.equal(a, b) and a.dtype == torch.float32


def test_multi_crop_resolutions():
    imgs = (torch.rand(5, 3, 32, 32) * 255).to(torch.uint8)
    views = sk.multi_crop(imgs, n_global=2, n_local=3, local_size=16)
    assert [tuple(v.shape) for v in views] == [(5, 3, 32, 32)] * 2 + [(5, 3, 16, 16)] * 3
