# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 08 — Your own images
#
# Every chapter so far trained on CIFAR, whose labels sat beside the images the whole time,
# ready to score every run. The point of self-supervised clustering is the opposite case: a
# folder of images that nobody has labelled — microscope tiles, a class's own photos, the
# pictures of a field trip. This chapter plays that case through from start to end. It
# takes 5,000 CIFAR-100 images of ten classes, writes them out as files *with the labels
# thrown away* (the answer key goes into a drawer), trains SeLa on the folder through the
# command line, judges the run by what needs no label, looks at the clusters, assigns 1,000
# new images to them, and only then brings the labels back to measure what was found.
#
# **Learning goals.** After this chapter you can
# 1. train any method on a folder of images without labels with
#    `python -m sslkit.train --dataset=FOLDER` (any depth, any image size, bad files skipped);
# 2. judge a run without labels from its label-free monitors: the loss, the cluster sizes
#    and the agreement of each labelling with the previous one;
# 3. use a trained run on new images: the gallery and CSV of `python -m sslkit.predict`, and
#    `sk.load_run(...).assign(...)` in Python;
# 4. bring labels back at the end to measure the clusters (NMI, majority-vote accuracy,
#    purity), against a baseline that learned nothing;
# 5. know what changes at a larger scale: `--image_size`, streaming, `--eval_dataset`,
#    STL-10 and the `imagenet` presets.

# %%
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

import labdata
import sslkit as sk

device = sk.setup_notebook(seed=0)
CHAPTER_T0 = time.time()
CLASSES = ["apple", "aquarium_fish", "bicycle", "cloud", "lion", "maple_tree", "orange", "sea", "sunflower",
           "tractor"]          # ten CIFAR-100 classes; any others work the same way
PER_CLASS = 500                # training photos per class: all of CIFAR-100's (fewer make the page faster)
EPOCHS = 16                    # of SeLa's lab recipe on 5,000 photos: about a minute on 2 CPU cores
WORK = Path(tempfile.mkdtemp(prefix="sslkit-ch08-"))   # the photos and the run live here, outside the repository

# %% [markdown]
# ## 1. A folder of images, the labels in a drawer
#
# The 500 training images of each of the ten classes become PNG files named `IMG_00042.png`,
# spread over three "memory cards" at different depths, in a shuffled order: nothing in a
# file's name or place says what it shows. A text file and a damaged JPEG lie among them, as
# they do in real folders. The 100 test images of each class become a second folder,
# `new_photos/`: images that arrive after training. Which file shows what is kept in a
# dictionary, `drawer`, which the chapter does not open before section 5.

# %%
def write_photos(data, keep, folder: Path, seed: int) -> dict:
    """Write ``data.images[keep]`` as PNG files at several depths under ``folder``, in a seeded
    shuffled order; return {file path: fine label} (the drawer)."""
    order = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(seed))]
    drawer = {}
    for k, i in enumerate(order.tolist()):
        sub = [Path("card1"), Path("card2") / "DCIM", Path("card3") / "DCIM" / "100TRIP"][k % 3]
        (folder / sub).mkdir(parents=True, exist_ok=True)
        name = (sub / f"IMG_{k:05d}.png").as_posix()
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / name)
        drawer[name] = CLASSES.index(data.classes[int(data.labels[i])])
    return drawer

photos, new_photos = WORK / "photos", WORK / "new_photos"
drawers = {}
for split, folder in (("train", photos), ("test", new_photos)):
    data = labdata.load("cifar100", split)
    keep = torch.nonzero(torch.isin(data.labels, torch.tensor([data.classes.index(c) for c in CLASSES]))).flatten()
    if split == "train":  # a seeded sample of PER_CLASS images of every class
        keep = keep[labdata.balanced_indices(data.labels[keep], PER_CLASS, seed=0)]
    drawers[split] = write_photos(data, keep, folder, seed={"train": 0, "test": 1}[split])
(photos / "card2" / "notes.txt").write_text("field trip, day 2")
(photos / "card3" / "IMG_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 the card was pulled out while writing")
files = labdata.scan_images(photos)
print(f"{photos}: {len(files)} image files (by their suffix), {len(files.skipped)} other file(s): {files.skipped}")
print("the first files:", files.names[:3])
assert len(drawers["train"]) == 10 * PER_CLASS and len(drawers["test"]) == 1000

# %% [markdown]
# ## 2. Training through the command line
#
# `--dataset` takes the folder. With no `train/<class>/` folders in it, every image at any
# depth is a training image and there are no labels: the command says so, counts and names
# the files it skipped (`--strict_images=true` would stop instead), and the monitors it
# prints are the label-free ones. `--subset=full` takes every image (the `lab` subsets are
# defined for the registered data sets only); `--image_size=32` reads them at 32 pixels, the
# size of this lab (a larger `--image_size` works the same way, see section 6). The method
# is SeLa with its lab preset (ConvNet, $K = 30$ clusters in each of 4 heads, relabelled by
# Sinkhorn before every epoch, a constant learning rate), for `EPOCHS` = 16 epochs instead of
# the preset's, to keep this page's training to about a minute (both printed below).

# %%
run_dir = WORK / "run"
command = [sys.executable, "-m", "sslkit.train", "--method=sela", "--preset=lab", f"--dataset={photos}",
           "--subset=full", "--image_size=32", f"--epochs={EPOCHS}", f"--output_dir={run_dir}"]
print(f"{EPOCHS} epochs; the lab preset trains {sk.apply_preset(sk.TrainConfig(method='sela'), 'lab').epochs}")
print("$ python -m sslkit.train " + " ".join(command[3:]))
t0 = time.time()
done = subprocess.run(command, capture_output=True, text=True)
train_s = time.time() - t0
print(done.stdout if done.returncode == 0 else done.stdout + done.stderr[-3000:])
assert done.returncode == 0
n_train = 10 * PER_CLASS
assert f"skipped 2 of {n_train + 2} files" in done.stdout and f"{n_train} images without labels" in done.stdout
print(f"training and the run's own record took {train_s:.0f} s")

# %% [markdown]
# ## 3. Judging a run without labels
#
# Without labels there is no accuracy to watch. What the run records instead, after every
# relabelling (`metrics.jsonl`): the loss; how evenly the images spread over the $K$
# clusters (the normalised entropy of the cluster sizes, 1 for equal sizes, near 0 for a
# collapse, and the largest cluster's share); and the NMI between this epoch's labelling and
# the previous one, which says whether the labelling is settling down.

# %%
metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
epochs = [r["epoch"] for r in metrics]
fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
axes[0].plot(epochs, [r["loss"] for r in metrics], "o-")
axes[0].set_title("loss", fontsize=9)
axes[1].plot(epochs, [r["cluster_entropy"] for r in metrics], "o-", label="H / ln K")
axes[1].plot(epochs, [r["largest_cluster"] for r in metrics], "s-", label="largest share")
axes[1].set_ylim(0, 1.05)
axes[1].legend(fontsize=7)
axes[1].set_title("cluster sizes", fontsize=9)
moves = [(r["epoch"], r["nmi_prev"]) for r in metrics if "nmi_prev" in r]
axes[2].plot(*zip(*moves), "o-")
axes[2].set_title("NMI with the previous labelling", fontsize=9)
for ax in axes:
    ax.set_xlabel("epoch", fontsize=8)
plt.tight_layout()
plt.show()
last = metrics[-1]
print(f"last epoch: loss {last['loss']:.2f}, H/ln K {last['cluster_entropy']:.3f}, largest cluster "
      f"{last['largest_cluster']:.1%} of the images (a fair share is {1 / 30:.1%}), NMI with the previous "
      f"labelling {moves[0][1]:.2f} at epoch {moves[0][0]} -> {moves[-1][1]:.2f} at epoch {moves[-1][0]}")
assert last["cluster_entropy"] > 0.9  # no collapse: the equipartition keeps every cluster in use

# %% [markdown]
# The first labelling, from the random network, is the least even (the log's first epoch);
# from then on the sizes stay even because SeLa's Sinkhorn step balances the plan, and a trained network's
# sharp plan rounds to nearly equal clusters (chapter 03, section 7); what they
# cannot say is whether the clusters mean anything. The NMI between consecutive labellings
# tells whether the network keeps regrouping the images or has settled on one grouping —
# also not whether the grouping is a good one. For that, a person has to look.
#
# ## 4. Looking at the clusters, assigning new images
#
# `python -m sslkit.predict` runs the trained network on a folder of images (here the 1,000
# new photos) and writes, for every image, its cluster in each of SeLa's heads with the
# head's probability of that cluster, its nearest training images, the features as a NumPy
# array, and a static gallery page: the clusters largest first, a few dozen thumbnails each,
# to open in any browser without a server.

# %%
pred_dir = WORK / "predicted"
command = [sys.executable, "-m", "sslkit.predict", f"--checkpoint={run_dir}", f"--images={new_photos}",
           f"--out={pred_dir}", "--neighbours=3", "--per_cluster=24"]
print("$ python -m sslkit.predict " + " ".join(command[3:]))
done = subprocess.run(command, capture_output=True, text=True)
print(done.stdout if done.returncode == 0 else done.stderr[-3000:])
assert done.returncode == 0
rows = list(csv.DictReader(open(pred_dir / "assignments.csv")))
page = pred_dir / "gallery" / "index.html"
thumbs = len(list((pred_dir / "gallery" / "thumbs").glob("*.png")))
print(f"assignments.csv: {len(rows)} rows, columns {list(rows[0])[:5]} ... {list(rows[0])[-2:]}")
print(f"gallery: {page} ({page.stat().st_size // 1024} KB, {thumbs} thumbnails beside it)")
print("one row:", {k: rows[0][k] for k in ("image", "cluster", "confidence", "neighbour_1", "similarity_1")})

# %% [markdown]
# The same in Python: `sk.load_run` returns the trained run, whose `.assign(images)` gives
# every head's cluster and confidence for a folder, a list of files or PIL images, or a
# tensor, read as the training images were. The cell checks that it agrees with the CSV, then
# shows the six largest clusters of the new photos the way the gallery does (most confident
# first).

# %%
run = sk.load_run(run_dir)
print(run)
found = run.assign(new_photos)
assert found.names == [r["image"] for r in rows]
assert found.cluster.tolist() == [int(r["cluster"]) for r in rows]
new_images = torch.stack([torch.from_numpy(np.array(Image.open(new_photos / n))).permute(2, 0, 1)
                          for n in found.names])
sizes = torch.bincount(found.cluster, minlength=30)
largest = sizes.argsort(descending=True)[:6].tolist()
rows_shown = []
for c in largest:
    members = torch.nonzero(found.cluster == c).flatten()
    rows_shown.append(members[found.confidence[members, 0].argsort(descending=True)[:12]])
fig = sk.plot_image_grid(torch.cat([new_images[r] for r in rows_shown]), nrow=12,
                         row_labels=[f"{c}: {int(sizes[c])}" for c in largest], scale=0.55,
                         title="the six largest clusters of the new photos (cluster: size), most confident first")
plt.show()

# %% [markdown]
# ## 5. Bringing the labels back
#
# Only now does the drawer open. First the clusters of the 1,000 new photos against their
# classes: the NMI (near 0 for clusters unrelated to the classes, though above 0 by chance
# with 30 clusters of 1,000 photos; 1 only for the classes themselves, up to renaming: 30
# clusters that split every class evenly in three score $2 \ln 10 / (\ln 30 + \ln 10) \approx 0.81$)
# and the majority-vote accuracy (each cluster named after its most frequent
# class: the standard accuracy of an over-clustering, here 30 clusters for 10 classes). A
# number means little alone, so the same is computed for two clusterings that learned
# nothing from these images, with the same $K = 30$: k-means on the pixels (each channel
# standardised by the training photos' mean and deviation, the stronger of chapter 00's two
# pixel baselines), and k-means
# on the features of the same network before training (its random initial weights). Then
# the features themselves: a weighted kNN classifier as in chapter 00 but with k = 20 (the
# bank has 500 photos per class), the training photos' labels as the bank, on the same three
# representations.

# %%
truth = torch.tensor([drawers["test"][n] for n in found.names])
train_names = sorted(drawers["train"])
train_truth = torch.tensor([drawers["train"][n] for n in train_names])
untrained = sk.build_method(run.config, 1).backbone.eval()   # the run's network at its initial weights
train_images = torch.stack([torch.from_numpy(np.array(Image.open(photos / n))).permute(2, 0, 1)
                            for n in train_names])
train_pixels = train_images.float() / 255
pixel_mean, pixel_std = train_pixels.mean((0, 2, 3), keepdim=True), train_pixels.std((0, 2, 3), keepdim=True)
representations = {
    "pixels (standardised)": (lambda x: ((x.float() / 255 - pixel_mean) / pixel_std).flatten(1)),
    "untrained network": (lambda x: sk.extract_features(untrained, x)),
    "trained network (SeLa)": (lambda x: run.features(x)),
}
scores = {}
for name, embed in representations.items():
    f_new, f_train = embed(new_images), embed(train_images)
    km = sk.kmeans(torch.nn.functional.normalize(f_new.float(), dim=1), 30, iters=50, seed=0).labels.cpu()
    knn = sk.knn_accuracy(f_train, train_truth, f_new, truth, k=20)
    scores[name] = {"nmi": sk.nmi(km, truth), "majority": sk.majority_accuracy(km, truth), "knn": knn}
ours = sk.clustering_metrics(found.cluster, truth, 30)
scores["SeLa's own clusters (head 0)"] = {"nmi": ours["nmi"], "majority": ours["majority_acc"], "knn": float("nan")}
print(f"{'':32s} {'NMI':>6s} {'majority %':>11s} {'kNN %':>7s}")
for name, v in scores.items():
    print(f"{name:32s} {v['nmi']:6.3f} {v['majority']:11.1f} {v['knn']:7.1f}")
heads = [sk.nmi(found.clusters[:, h], truth) for h in range(found.clusters.shape[1])]
print("NMI of each of SeLa's 4 heads:", [round(h, 3) for h in heads])


def compare(a: float, b: float, tol: float) -> str:
    return "about the same as" if abs(a - b) < tol else ("above" if a > b else "below")


px, un, tr = (scores[k] for k in ("pixels (standardised)", "untrained network", "trained network (SeLa)"))
print("(one seed: differences under 0.02 NMI or 2 kNN points count as about the same)")
print(f"k-means on the trained features: NMI {compare(tr['nmi'], px['nmi'], 0.02)} the pixels' "
      f"({tr['nmi'] - px['nmi']:+.3f}) and {compare(tr['nmi'], un['nmi'], 0.02)} the untrained network's "
      f"({tr['nmi'] - un['nmi']:+.3f})")
print(f"SeLa's own clusters: NMI {compare(ours['nmi'], px['nmi'], 0.02)} the pixels' k-means "
      f"({ours['nmi'] - px['nmi']:+.3f})")
print(f"kNN on the trained features: {compare(tr['knn'], un['knn'], 2.0)} the untrained network's "
      f"({tr['knn'] - un['knn']:+.1f} points), {compare(tr['knn'], px['knn'], 2.0)} the pixels' "
      f"({tr['knn'] - px['knn']:+.1f})")

# %%
counts = torch.zeros(30, 10, dtype=torch.long)
counts.index_put_((found.cluster, truth), torch.ones(len(truth), dtype=torch.long), accumulate=True)
order = sorted(range(30), key=lambda c: (int(counts[c].argmax()), -int(counts[c].max())))
fig, ax = plt.subplots(figsize=(9, 2.8))
ax.imshow(counts[order].T.float(), aspect="auto", cmap="Blues")
ax.set_yticks(range(10), CLASSES, fontsize=7)
ax.set_xticks(range(30), order, fontsize=6)
ax.set_xlabel("cluster (grouped by its most frequent class)", fontsize=8)
ax.set_title("new photos: cluster x class counts", fontsize=9)
plt.tight_layout()
plt.show()
purity = counts.max(1).values.float() / counts.sum(1).clamp_min(1)
used = counts.sum(1) > 0
best = sorted((float(purity[c]), c) for c in range(30) if used[c])[::-1][:3]
for p, c in best:
    print(f"cluster {c}: {int(counts[c].sum())} photos, {p:.0%} of them {CLASSES[int(counts[c].argmax())]}")
found_classes = sorted({CLASSES[int(counts[c].argmax())] for c in range(30) if used[c] and purity[c] >= 0.5})
print(f"classes that are the majority of at least one cluster of >= 50 % purity: {found_classes}")

# %% [markdown]
# What the numbers above say is specific to this run (one seed, `EPOCHS` epochs on 5,000 images of
# 32 pixels), and the printed comparisons are the measurement: the purest clusters are
# printed with their class, and the heat map shows which classes share clusters. These ten
# classes differ a lot in colour (a blue sea, an orange fruit, a yellow sunflower), so the
# pixels' own k-means may already find much of what a short run finds (compare the pixel and
# SeLa rows of the table); the kNN accuracy, which
# asks whether photos of one class lie near each other in the features, is where the
# training's effect shows, or does not, against the untrained network.
#
# ## 6. At a larger scale
#
# The same commands take larger images and more of them:
#
# * `--image_size=96` (or 64, 128, 224) reads every image at that side (shorter side
#   resized, centre square, as torchvision's `Resize` + `CenterCrop`); the random crops, the
#   multi-crop sizes and the backbones follow it (the ImageNet stem with its strides from
#   96 pixels on). The registered STL-10 (`--dataset=stl10 --image_size=96`: 100,000
#   unlabelled, 5,000 labelled training and 8,000 labelled test images of 96 pixels, the
#   standard small-data benchmark) trains on the 105,000 training images and is scored with
#   the labelled training images as the kNN bank and the 8,000 test images as queries.
# * A labelled folder for the monitors: `--eval_dataset=FOLDER` (with `train/<class>/` and
#   `test/<class>/`) gives a run on unlabelled images its kNN monitor, linear probe and NMI.
# * Data that does not fit in memory is decoded by DataLoader worker processes at every pass
#   (`--stream`, automatic above `--stream_above_gb`); a streamed run trains on the same
#   images in the same order as an in-memory one and resumes exactly. How many workers keep
#   a GPU fed: `python -m sslkit.bench data` prints the images decoded per second per worker,
#   measured here on a few synthetic photographs:

# %%
from sslkit.bench.data import bench_data

rates = bench_data(None, [96, 224], [1], per_worker=64, repeats=1)

# %% [markdown]
# * Each method has an `imagenet` preset with its paper's recipe (backbone, 224 pixels,
#   crops, batch, learning-rate rule, schedule, epochs, $K$, heads), reading the standard
#   ImageNet folder (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`), e.g.
#   `torchrun --nproc_per_node=8 -m sslkit.train --method=swav --preset=imagenet --dataset=/data/ILSVRC2012`.
#
# ## Summary
#
# * A folder of images without labels is a data set: `python -m sslkit.train
#   --dataset=FOLDER` reads every image at any depth, skips (and names) what is not an image,
#   and trains with label-free monitors; kNN, the linear probe and NMI need a labelled set.
# * Without labels, the loss, the cluster sizes and the NMI between consecutive labellings
#   say whether a run is healthy and settling, not whether its clusters are good.
# * `python -m sslkit.predict` and `sk.load_run(...).assign(...)` put new images into the
#   trained clusters, with the method's confidence and the nearest training images; the
#   gallery is one static page.
# * Measured at the end, against the labels kept aside and against two baselines that
#   learned nothing (k-means on the pixels, the untrained network), the clusters and features
#   of this short run are printed above with their NMI, purity and kNN accuracy: the only
#   honest way to say what was found.
#
# ## References
#
# * Y. M. Asano, C. Rupprecht, A. Vedaldi. *Self-labelling via simultaneous clustering and
#   representation learning.* ICLR 2020. [arXiv:1911.05371](https://arxiv.org/abs/1911.05371);
#   code: [yukimasano/self-label](https://github.com/yukimasano/self-label).
# * A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images.* 2009 (CIFAR-100).
#   [Technical report](https://www.cs.toronto.edu/~kriz/learning-features-2009-TR.pdf).
# * A. Coates, H. Lee, A. Y. Ng. *An Analysis of Single-Layer Networks in Unsupervised Feature
#   Learning.* AISTATS 2011 (STL-10). [PMLR 15:215-223](https://proceedings.mlr.press/v15/coates11a.html).
# * M. Caron, P. Bojanowski, A. Joulin, M. Douze. *Deep Clustering for Unsupervised Learning of
#   Visual Features.* ECCV 2018 (a method's clusters looked at image by image).
#   [arXiv:1807.05520](https://arxiv.org/abs/1807.05520).
#
# The book's page on your own images, `book/own_images.md`, has the commands, streaming and the presets.

# %%
shutil.rmtree(WORK, ignore_errors=True)  # the photos, the run and the gallery were only for this page
print(f"this page executed in {time.time() - CHAPTER_T0:.0f} s (from the imports to here) on {device}; "
      f"training took {train_s:.0f} s")

# %% [markdown]
# ## Exercises
#
# These exercises are self-contained: they need no dataset and no training run. Replace
# every `...` with your code and run the cell. In the course edition of these exercises a
# check cell under each answer runs its public tests; the grader also runs hidden tests on
# further inputs (random and edge cases). Points are in brackets.

# %%
import math

import torch
import torch.nn.functional as F

import sslkit as sk


# %% [markdown]
# **Exercise 1 — the centre square [3 points].** Every image is read at `size x size` as
# torchvision's `Resize(size)` followed by `CenterCrop(size)`: the shorter side is resized
# to `size` and the longer one to `int(size * long / short)` (truncated), then the crop's
# left edge is at `int(round((new_w - size) / 2))` and its top edge at
# `int(round((new_h - size) / 2))` (Python's `round`). Implement `square_box(w, h, size)`
# returning `(new_w, new_h, left, top)` for an image `w` pixels wide and `h` high (an image
# that is already `size x size` gives `(size, size, 0, 0)`).

# %%
def square_box(w, h, size):
    ...


# %% [markdown]
# **Exercise 2 — the nearest training images [3 points].** `python -m sslkit.predict` lists,
# for every new image, the training images whose features are most similar to its own.
# Implement `nearest_training(query, bank, k)`: `query` (N, D) and `bank` (M, D) features,
# returning the (N, k) indices into `bank` of the `k` rows with the largest cosine
# similarity to each query row, most similar first. No `sk` function and no loop over the
# images.

# %%
def nearest_training(query, bank, k):
    ...


# %% [markdown]
# **Exercise 3 — how pure is a cluster [2 points].** When the true labels of clustered
# images are known, a cluster is as good as the share of its images that carry its most
# frequent label. Implement `cluster_purity(clusters, labels)` returning a dict
# `{cluster: (label, purity)}` for every cluster that occurs: its most frequent label (the
# smallest label on a tie) and the fraction of its images with that label. Both arguments are
# int tensors of the same length.

# %%
def cluster_purity(clusters, labels):
    ...


# %% [markdown]
# **Exercise 4 — in memory or streamed [1 point].** A run keeps its training images in memory
# as uint8 tensors of 3 x S x S bytes each, and streams them (decodes them in worker processes
# at every pass) above `--stream_above_gb=4` GB ($10^9$ bytes). Up to how many images (the
# largest whole number) does a run at S = 224 pixels keep in memory? Give the number.

# %%
largest_in_memory = ...
