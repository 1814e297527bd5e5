"""python -m sslkit.bench transport|kmeans|train|data|gpu [--device D] [--sizes ...]  (gpu: see sslkit/bench/gpu.py)

Every Sinkhorn and k-means figure is the median of ``--repeats`` runs (3); a training figure
is the rate over ``--steps`` steps after 3 warm-up steps. Each stands beside the machine's
measured limit: the read rate (GB/s of the faster of a sum and a dot product over a float32
array the size of the Sinkhorn kernel, at most 1 GiB) for Sinkhorn, the matrix-product rate
(GFLOP/s of a 2048^3 GEMM; float32, or the training step's precision) for k-means and training.

transport: for each N x K (scores: log-softmax of Gaussian logits), ``sslkit.transport.sinkhorn``
to the marginal error ``--tol`` (L1 over the clusters): total time, iterations, error, and the
time of one iteration measured apart (runs of 20 and 60 iterations, difference / 40), which
reads the N x K kernel twice: its bandwidth and fraction of the read rate measured over an
array of the kernel's size (on a CPU a kernel that fits in the caches reads faster than one
that streams from memory, so each size gets its own limit; the header gives the rate over
1 GiB, beyond the caches); and the time of torch's two bare matrix-vector products over a
matrix of the kernel's size (the reads an iteration cannot avoid) as a fraction of an
iteration's time.
When POT is installed (on a CPU: NumPy float64 arrays, the way its documentation runs it),
``ot.sinkhorn(a, b, M, reg, method=...)`` for ``sinkhorn`` (POT's default) and ``sinkhorn_log``
on the same problem (``M = -scores``, ``reg = 1/lambda``, ``stopThr = tol / sqrt(K)``: POT checks
the L2 error of the cluster marginals every 10 iterations, and L2 below tol / sqrt(K) means L1
below tol), with the L1 error of its plan and the time ratio POT / sslkit.

kmeans: for each N x D x K (Gaussian blobs), each library the way a user runs it, with the
same number of Lloyd iterations (``--iters``, 20) and its own seeding:
``sslkit.kmeans(x, K, iters=20, tol=0)`` (k-means|| on a sample of 32 K rows), ``faiss.Kmeans(D, K, niter=20).train(x)``
then ``index.search(x, 1)`` for the labels (faiss seeds with random points; its default
``max_points_per_centroid=256`` subsamples when N > 256 K), and scikit-learn's
``KMeans(K, n_init=1, max_iter=20, tol=0)`` (greedy k-means++; skipped above N*K = 2e7,
where a run takes minutes here). The libraries take turns within each repeat (sslkit, faiss,
scikit-learn, then again), so that a slow spell on a shared machine does not fall on one. Reported: time, final inertia (sum of squared distances of all N
points to their nearest final centroid, the same formula for all) and its difference to
sslkit's, the time ratio other / sslkit (above 1: sslkit faster), and sslkit's assignment
rate (2 N D K per assignment, iters + 1 assignments) as a fraction of the matmul rate.
``--init same`` instead starts every library from the same random centroids, which
isolates the Lloyd iterations; ``--seeding`` picks sslkit's own seeding (k-means|| by default).
A size whose first round (sslkit and faiss) takes under ``--min-time`` / 3 seconds gets more
rounds, up to ``--min-time`` seconds of them (at most 41): a 0.1 s run swings by 10-20 % on a
shared machine, and a median of three does not settle it. scikit-learn runs in the first
``--repeats`` rounds only.

faiss-cpu's wheels bundle their own OpenBLAS (0.3.15 in faiss-cpu 1.15), which picks its
kernels from the CPU model; on a CPU it does not know (Ice Lake server is one) it falls back
to SSE3 kernels ('Prescott') and faiss runs 3-4x slower. With ``--faiss-blas best`` (the
default) the benchmark asks a fresh process which kernels faiss's OpenBLAS picked and, when
it fell back although the CPU has AVX-512 (or AVX2), sets ``OPENBLAS_CORETYPE=SkylakeX``
(``Haswell``) before it loads faiss, so that faiss is measured at its best; the header says
so. ``--faiss-blas installed`` measures faiss as installed.

data: decoded images/s of the streaming path (DataLoader workers reading, decoding and resizing
image files) per worker process, at 96 and 224 px (``--sizes``): see sslkit/bench/data.py.

train: images/s of one optimiser step (forward, backward, update, the method's own per-step
work such as Sinkhorn codes or the memory-bank update) for each method and backbone, on
synthetic 32x32 uint8 images held on the device, with the chosen precision; the ratio
column compares each method with the first one listed (by default the supervised baseline, the registry's first) on the same backbone (1.0 = as fast).
Beside it: the step's FLOPs per image (matrix products and convolutions, forward and backward,
counted by ``torch.utils.flop_counter`` over one step), the FLOP rate that makes, and its
fraction of the measured matmul rate in the step's precision (fp32, or bf16 under ``--precision
bf16``): the machine's limit for a step whose time goes to products.
Offline work between epochs (SeLa's relabelling, DeepCluster's k-means) is timed by the
transport and kmeans benchmarks. When lightly is installed, two rows follow sslkit's SwAV:
lightly's SwaV the way its example trains it (``SwaVProjectionHead``, ``SwaVPrototypes``,
``SwaVLoss``, ``prototypes.normalize()`` and one forward per view), on the same backbone,
sizes and optimiser, once with the two views ready on the device (the step's compute alone,
without augmentation, where sslkit's step includes its own) and once fed by a DataLoader
with lightly's ``SwaVTransform`` on PIL images (two 32 px crops at sslkit's crop scale, jitter
and grey probability, no blur; one worker per CPU).
"""

from __future__ import annotations

import argparse
import sys

from ..device import pick_device
from .kmeans import bench_kmeans
from .timing import images_per_s  # noqa: F401  (tests time a step with it)
from .train import bench_train
from .transport import bench_transport


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "gpu":  # the accelerator checks: their own options (sslkit/bench/gpu.py)
        from .gpu import main as gpu_main

        return gpu_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m sslkit.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["transport", "kmeans", "train", "data"])
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--backbones", nargs="*", default=["convnet", "resnet18"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="problem sizes: NxK (transport) or NxDxK (kmeans)")
    parser.add_argument("--iters", type=int, default=20, help="k-means iterations")
    parser.add_argument("--lam", type=float, default=25.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iters", type=int, default=1000)
    parser.add_argument("--no-ref", action="store_true", help="skip the reference libraries (faiss, scikit-learn, POT)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--seeding", default=None, choices=["kmeans++", "kmeans||", "random"],
                        help="k-means: sslkit's seeding with --init own (default: sslkit.kmeans's default)")
    parser.add_argument("--min-time", type=float, default=3.0,
                        help="k-means: sizes whose runs are short get more rounds, up to this many seconds")
    parser.add_argument("--faiss-blas", default="best", choices=["best", "installed"],
                        help="k-means: faiss's bundled OpenBLAS at its best kernels for this CPU, or as installed")
    parser.add_argument("--init", default="own", choices=["own", "same"],
                        help="k-means: each library's own seeding (as a user runs it) or the same random centroids")
    parser.add_argument("--images", default=None, help="data: a folder or .tar of your images (default: synthetic JPEGs)")
    parser.add_argument("--workers", nargs="*", type=int, default=None,
                        help="data: worker counts to measure (default: 1, half the cores, all the cores)")
    parser.add_argument("--per-worker", type=int, default=256, help="data: images decoded per worker per pass")
    args = parser.parse_args(argv)
    if args.what == "data":
        from .data import bench_data

        bench_data(args.images, [int(s) for s in (args.sizes or ["96", "224"])], args.workers, args.per_worker,
                   max(1, min(args.repeats, 3)))
        return
    device = pick_device(args.device)
    if args.no_ref:
        sys.modules.update({"ot": None, "faiss": None, "sklearn": None, "sklearn.cluster": None, "lightly": None})
    defaults = {"transport": ["10000x100", "100000x300", "100000x1000"],
                "kmeans": ["10000x256x100", "100000x128x1000", "200000x256x2000"]}
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.sizes or defaults.get(args.what, []))]
    if args.what == "train":
        from ..registry import method_names

        bench_train(device, args.methods or method_names(), args.backbones, args.batch_size, args.steps,
                    args.precision, args.compile)
    elif args.what == "transport":
        bench_transport(device, sizes, args.lam, args.tol, args.max_iters, args.repeats)
    else:
        bench_kmeans(device, sizes, args.iters, args.repeats, args.init, args.seeding, args.min_time, args.faiss_blas)


if __name__ == "__main__":
    main()
