"""Typical wrong answers to every implementation task of the assignments, for tests/test_assign.py:
each must lose at least half of its task's points to the hidden tests (and the key keep them all).

MISTAKES[chapter][question] is a list of (label, source). The kinds the course's hidden tests
must catch: off-by-one iteration counts, a missing max shift where the inputs overflow in the
student's precision, a softmax or normalisation over the wrong axis, transposed inputs, a wrong
constant; and for a few tasks the mistake the exercise is about (plain scaling for the
log-domain Sinkhorn, ignoring the queue).
"""

MISTAKES = {
    "00": {
        "weighted_knn": [
            ("features not L2-normalised (raw dot products)", '''
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    sim, idx = (test_f.double() @ train_f.double().T).topk(min(k, len(train_f)), dim=1)
    votes = torch.zeros(len(test_f), num_classes, dtype=torch.float64)
    votes.scatter_add_(1, train_y[idx].long(), torch.exp(sim / tau))
    return votes.argmax(1)'''),
            ("weights exp(s) without the temperature", '''
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    bank, q = F.normalize(train_f.double(), dim=1), F.normalize(test_f.double(), dim=1)
    sim, idx = (q @ bank.T).topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(q), num_classes, dtype=torch.float64)
    votes.scatter_add_(1, train_y[idx].long(), torch.exp(sim))
    return votes.argmax(1)'''),
            ("k + 1 neighbours", '''
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    bank, q = F.normalize(train_f.double(), dim=1), F.normalize(test_f.double(), dim=1)
    sim, idx = (q @ bank.T).topk(min(k + 1, len(bank)), dim=1)
    votes = torch.zeros(len(q), num_classes, dtype=torch.float64)
    votes.scatter_add_(1, train_y[idx].long(), torch.exp(sim / tau))
    return votes.argmax(1)'''),
            ("similarity matrix transposed (train x test)", '''
def weighted_knn(train_f, train_y, test_f, k=200, tau=0.1, num_classes=10):
    bank, q = F.normalize(train_f.double(), dim=1), F.normalize(test_f.double(), dim=1)
    sim, idx = (bank @ q.T).topk(min(k, len(q)), dim=0)
    votes = torch.zeros(len(q), num_classes, dtype=torch.float64)
    votes.scatter_add_(1, train_y[idx.T].long(), torch.exp(sim.T / tau))
    return votes.argmax(1)'''),
        ],
        "hungarian_accuracy": [
            ("minimises the matches (no maximize=True)", '''
def hungarian_accuracy(pred, true):
    from scipy.optimize import linear_sum_assignment
    pred, true = torch.as_tensor(pred).long(), torch.as_tensor(true).long()
    counts = torch.zeros(int(pred.max()) + 1, int(true.max()) + 1, dtype=torch.float64)
    counts.index_put_((pred, true), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy())
    return 100.0 * float(counts[rows, cols].sum()) / len(pred)'''),
            ("many-to-one: each cluster takes its majority class", '''
def hungarian_accuracy(pred, true):
    pred, true = torch.as_tensor(pred).long(), torch.as_tensor(true).long()
    counts = torch.zeros(int(pred.max()) + 1, int(true.max()) + 1, dtype=torch.float64)
    counts.index_put_((pred, true), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    return 100.0 * float(counts.max(1).values.sum()) / len(pred)'''),
            ("a fraction, not a percentage", '''
def hungarian_accuracy(pred, true):
    from scipy.optimize import linear_sum_assignment
    pred, true = torch.as_tensor(pred).long(), torch.as_tensor(true).long()
    counts = torch.zeros(int(pred.max()) + 1, int(true.max()) + 1, dtype=torch.float64)
    counts.index_put_((pred, true), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return float(counts[rows, cols].sum()) / len(pred)'''),
        ],
    },
    "01": {
        "first_collapse": [
            ("1-based step (off by one)", '''
def first_collapse(history, k, threshold=0.5):
    for step, labels in enumerate(history, 1):
        p = torch.bincount(labels.long(), minlength=k).double() / len(labels)
        if -torch.special.xlogy(p, p).sum().item() / math.log(k) < threshold:
            return step
    return None'''),
            ("normalised by ln of the used clusters, not ln K", '''
def first_collapse(history, k, threshold=0.5):
    for step, labels in enumerate(history):
        p = torch.bincount(labels.long(), minlength=k).double() / len(labels)
        used = int((p > 0).sum())
        h = -torch.special.xlogy(p, p).sum().item()
        if (h / math.log(used) if used > 1 else 0.0) < threshold:
            return step
    return None'''),
            ("entropy not normalised", '''
def first_collapse(history, k, threshold=0.5):
    for step, labels in enumerate(history):
        p = torch.bincount(labels.long(), minlength=k).double() / len(labels)
        if -torch.special.xlogy(p, p).sum().item() < threshold:
            return step
    return None'''),
            ("entropy in bits divided by ln K", '''
def first_collapse(history, k, threshold=0.5):
    for step, labels in enumerate(history):
        p = torch.bincount(labels.long(), minlength=k).double() / len(labels)
        h = -(torch.special.xlogy(p, p) / math.log(2)).sum().item()
        if h / math.log(k) < threshold:
            return step
    return None'''),
        ],
        "nmi_between_steps": [
            ("normalised by max(H(a), H(b))", '''
def nmi(a, b):
    a, b = torch.as_tensor(a).long(), torch.as_tensor(b).long()
    n = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    n.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = n / n.sum()
    pa, pb = p.sum(1), p.sum(0)
    ha, hb = -torch.special.xlogy(pa, pa).sum().item(), -torch.special.xlogy(pb, pb).sum().item()
    if ha == 0 and hb == 0:
        return 1.0
    mi = (torch.special.xlogy(p, p).sum() - torch.special.xlogy(pa, pa).sum() - torch.special.xlogy(pb, pb).sum()).item()
    return max(0.0, mi / max(ha, hb))'''),
            ("normalised by sqrt(H(a) H(b))", '''
def nmi(a, b):
    a, b = torch.as_tensor(a).long(), torch.as_tensor(b).long()
    n = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    n.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = n / n.sum()
    pa, pb = p.sum(1), p.sum(0)
    ha, hb = -torch.special.xlogy(pa, pa).sum().item(), -torch.special.xlogy(pb, pb).sum().item()
    if ha == 0 and hb == 0:
        return 1.0
    if ha == 0 or hb == 0:
        return 0.0
    mi = (torch.special.xlogy(p, p).sum() - torch.special.xlogy(pa, pa).sum() - torch.special.xlogy(pb, pb).sum()).item()
    return max(0.0, mi / math.sqrt(ha * hb))'''),
            ("marginals summed over the wrong axes", '''
def nmi(a, b):
    a, b = torch.as_tensor(a).long(), torch.as_tensor(b).long()
    n = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    n.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = n / n.sum()
    pa, pb = p.sum(0), p.sum(1)
    ha, hb = -torch.special.xlogy(pa, pa).sum().item(), -torch.special.xlogy(pb, pb).sum().item()
    if ha == 0 and hb == 0:
        return 1.0
    mi = torch.special.xlogy(p, p / (pa[:, None] * pb[None, :])).sum().item()
    return max(0.0, mi / (0.5 * (ha + hb)))'''),
            ("I in bits, H in nats", '''
def nmi(a, b):
    a, b = torch.as_tensor(a).long(), torch.as_tensor(b).long()
    n = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    n.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    p = n / n.sum()
    pa, pb = p.sum(1), p.sum(0)
    ha, hb = -torch.special.xlogy(pa, pa).sum().item(), -torch.special.xlogy(pb, pb).sum().item()
    if ha == 0 and hb == 0:
        return 1.0
    mi = (torch.special.xlogy(p, p).sum() - torch.special.xlogy(pa, pa).sum() - torch.special.xlogy(pb, pb).sum()).item()
    return max(0.0, mi / math.log(2) / (0.5 * (ha + hb)))'''),
        ],
    },
    "02": {
        "constraint_matrix": [
            ("column-major vec(Q) (Kronecker factors swapped)", '''
def transport_constraints(n, k):
    rows = torch.kron(torch.ones(1, k, dtype=torch.float64), torch.eye(n, dtype=torch.float64))
    cols = torch.kron(torch.eye(k, dtype=torch.float64), torch.ones(1, n, dtype=torch.float64))
    return torch.cat([rows, cols])'''),
            ("cluster constraints first", '''
def transport_constraints(n, k):
    rows = torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, k, dtype=torch.float64))
    cols = torch.kron(torch.ones(1, n, dtype=torch.float64), torch.eye(k, dtype=torch.float64))
    return torch.cat([cols, rows])'''),
            ("transposed: (N K, N + K)", '''
def transport_constraints(n, k):
    rows = torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, k, dtype=torch.float64))
    cols = torch.kron(torch.ones(1, n, dtype=torch.float64), torch.eye(k, dtype=torch.float64))
    return torch.cat([rows, cols]).T'''),
            ("column block with the factors swapped", '''
def transport_constraints(n, k):
    rows = torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, k, dtype=torch.float64))
    cols = torch.kron(torch.eye(k, dtype=torch.float64), torch.ones(1, n, dtype=torch.float64))
    return torch.cat([rows, cols])'''),
        ],
        "mutual_information": [
            ("p(y) averaged over the wrong axis", '''
def mutual_information(q):
    q = q.double()
    py = q.mean(1)
    return float(-torch.special.xlogy(py, py).sum() + torch.special.xlogy(q, q).sum(1).mean())'''),
            ("H(y | i) summed over the images, not averaged", '''
def mutual_information(q):
    q = q.double()
    py = q.mean(0)
    return float(-torch.special.xlogy(py, py).sum() + torch.special.xlogy(q, q).sum())'''),
            ("in bits", '''
def mutual_information(q):
    q = q.double()
    py = q.mean(0)
    return float((-torch.special.xlogy(py, py).sum() + torch.special.xlogy(q, q).sum(1).mean()) / math.log(2))'''),
        ],
    },
    "03": {
        "sinkhorn_log": [
            ("one iteration short", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    log_k = lam * log_p.double()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n), dtype=torch.float64) if r is None else r.double().log()
    log_c = torch.full((k,), -math.log(k), dtype=torch.float64) if c is None else c.double().log()
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    for _ in range(iters - 1):
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=0)
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=1)
    return log_k + f[:, None] + g[None, :]'''),
            ("one iteration too many", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    log_k = lam * log_p.double()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n), dtype=torch.float64) if r is None else r.double().log()
    log_c = torch.full((k,), -math.log(k), dtype=torch.float64) if c is None else c.double().log()
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    for _ in range(iters + 1):
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=0)
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=1)
    return log_k + f[:, None] + g[None, :]'''),
            ("rows scaled first, then columns", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    log_k = lam * log_p.double()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n), dtype=torch.float64) if r is None else r.double().log()
    log_c = torch.full((k,), -math.log(k), dtype=torch.float64) if c is None else c.double().log()
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    for _ in range(iters):
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=1)
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=0)
    return log_k + f[:, None] + g[None, :]'''),
            ("logsumexp over the wrong axes", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    log_k = lam * log_p.double()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n), dtype=torch.float64) if r is None else r.double().log()
    log_c = torch.full((k,), -math.log(k), dtype=torch.float64) if c is None else c.double().log()
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    for _ in range(iters):
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=1)
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=0)
    return log_k + f[:, None] + g[None, :]'''),
            ("plain scaling, not the log domain", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    K = torch.exp(lam * log_p.double())
    n, k = K.shape
    r = torch.full((n,), 1 / n, dtype=torch.float64) if r is None else r.double()
    c = torch.full((k,), 1 / k, dtype=torch.float64) if c is None else c.double()
    a = torch.ones(n, dtype=torch.float64)
    for _ in range(iters):
        b = c / (K.T @ a)
        a = r / (K @ b)
    return (a[:, None] * K * b[None, :]).log()'''),
            ("float32, not float64", '''
def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    log_k = lam * log_p.float()
    n, k = log_k.shape
    log_r = torch.full((n,), -math.log(n)) if r is None else r.float().log()
    log_c = torch.full((k,), -math.log(k)) if c is None else c.float().log()
    f, g = torch.zeros(n), torch.zeros(k)
    for _ in range(iters):
        g = log_c - torch.logsumexp(log_k + f[:, None], dim=0)
        f = log_r - torch.logsumexp(log_k + g[None, :], dim=1)
    return log_k + f[:, None] + g[None, :]'''),
        ],
        "sela_objective": [
            ("entropy term with the wrong sign", '''
def sela_objective(Q, log_p, lam):
    Q, log_p = Q.double(), log_p.double()
    return float((Q * -log_p).sum() + -torch.special.xlogy(Q, Q).sum() / lam)'''),
            ("entropy multiplied by lambda", '''
def sela_objective(Q, log_p, lam):
    Q, log_p = Q.double(), log_p.double()
    return float((Q * -log_p).sum() - lam * -torch.special.xlogy(Q, Q).sum())'''),
            ("cost <Q, log P> (sign of the cost)", '''
def sela_objective(Q, log_p, lam):
    Q, log_p = Q.double(), log_p.double()
    return float((Q * log_p).sum() - -torch.special.xlogy(Q, Q).sum() / lam)'''),
            ("means over the entries, not sums", '''
def sela_objective(Q, log_p, lam):
    Q, log_p = Q.double(), log_p.double()
    return float((Q * -log_p).mean() - -torch.special.xlogy(Q, Q).mean() / lam)'''),
        ],
    },
    "04": {
        "pca_whiten_l2": [
            ("eigenvectors in eigh's ascending order", '''
def pca_whiten_l2(f, dim, eps=1e-5):
    x = f.double()
    xc = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(xc.T @ xc / len(x))
    y = xc @ evecs[:, :dim] / torch.sqrt(evals[:dim].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=1).float()'''),
            ("not centred", '''
def pca_whiten_l2(f, dim, eps=1e-5):
    x = f.double()
    evals, evecs = torch.linalg.eigh(x.T @ x / len(x))
    order = torch.argsort(evals, descending=True)[:dim]
    y = x @ evecs[:, order] / torch.sqrt(evals[order].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=1).float()'''),
            ("divided by lambda + eps, not its square root", '''
def pca_whiten_l2(f, dim, eps=1e-5):
    x = f.double()
    xc = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(xc.T @ xc / len(x))
    order = torch.argsort(evals, descending=True)[:dim]
    y = xc @ evecs[:, order] / (evals[order].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=1).float()'''),
            ("eigenvector matrix transposed (rows taken)", '''
def pca_whiten_l2(f, dim, eps=1e-5):
    x = f.double()
    xc = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(xc.T @ xc / len(x))
    order = torch.argsort(evals, descending=True)[:dim]
    y = xc @ evecs[order, :].T / torch.sqrt(evals[order].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=1).float()'''),
            ("L2 over the wrong axis", '''
def pca_whiten_l2(f, dim, eps=1e-5):
    x = f.double()
    xc = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(xc.T @ xc / len(x))
    order = torch.argsort(evals, descending=True)[:dim]
    y = xc @ evecs[:, order] / torch.sqrt(evals[order].clamp(min=0) + eps)
    return torch.nn.functional.normalize(y, dim=0).float()'''),
        ],
        "uniform_sampler": [
            ("empty clusters counted (K = labels.max() + 1)", '''
def uniform_sampler(labels, num_samples, generator=None):
    k = int(labels.max()) + 1
    base, extra = divmod(num_samples, k)
    bonus = set(torch.randperm(k, generator=generator)[:extra].tolist())
    picks = []
    for c in range(k):
        members = torch.nonzero(labels == c).flatten()
        n = base + (c in bonus)
        if len(members) == 0:
            continue
        if len(members) >= n:
            picks.append(members[torch.randperm(len(members), generator=generator)[:n]])
        else:
            picks.append(members[torch.randint(len(members), (n,), generator=generator)])
    idx = torch.cat(picks)
    return idx[torch.randperm(len(idx), generator=generator)]'''),
            ("the remainder dropped (n // K' each)", '''
def uniform_sampler(labels, num_samples, generator=None):
    clusters = torch.unique(labels)
    n = num_samples // len(clusters)
    picks = []
    for c in clusters.tolist():
        members = torch.nonzero(labels == c).flatten()
        if len(members) >= n:
            picks.append(members[torch.randperm(len(members), generator=generator)[:n]])
        else:
            picks.append(members[torch.randint(len(members), (n,), generator=generator)])
    idx = torch.cat(picks)
    return idx[torch.randperm(len(idx), generator=generator)]'''),
            ("each draw picks a random cluster (uniform only on average)", '''
def uniform_sampler(labels, num_samples, generator=None):
    clusters = torch.unique(labels)
    which = clusters[torch.randint(len(clusters), (num_samples,), generator=generator)]
    out = []
    for c in which.tolist():
        members = torch.nonzero(labels == c).flatten()
        out.append(members[torch.randint(len(members), (1,), generator=generator)])
    return torch.cat(out)'''),
        ],
    },
    "05": {
        "codes_with_queue": [
            ("no max shift, in float32", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    q = torch.exp(torch.cat([queue_scores.float(), scores.float()]) / epsilon)
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue_scores):]'''),
            ("no max shift, in float64", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    q = torch.exp(torch.cat([queue_scores.double(), scores.double()]) / epsilon)
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue_scores):].float()'''),
            ("one iteration short", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    s = torch.cat([queue_scores.double(), scores.double()]) / epsilon
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters - 1):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue_scores):].float()'''),
            ("rows normalised first, then prototypes", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    s = torch.cat([queue_scores.double(), scores.double()]) / epsilon
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(1, keepdim=True) / n
        q = q / q.sum(0, keepdim=True) / k
    q = q / q.sum(1, keepdim=True) / n
    return (q * n)[len(queue_scores):].float()'''),
            ("the queue's codes returned, not the batch's", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    s = torch.cat([queue_scores.double(), scores.double()]) / epsilon
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n)[:len(scores)].float()'''),
            ("the queue ignored", '''
def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    s = scores.double() / epsilon
    q = torch.exp(s - s.max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return (q * n).float()'''),
        ],
        "swav_loss": [
            ("softmax over the batch axis", '''
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    scores = [zv @ prototypes.T for zv in z]
    total = 0.0
    for i in range(n_global):
        with torch.no_grad():
            q = sk.swav_codes(scores[i].detach(), epsilon, iters)
        others = [v for v in range(len(z)) if v != i]
        total = total + sum(-(q * F.log_softmax(scores[v] / tau, dim=0)).sum(1).mean() for v in others) / len(others)
    return total / n_global'''),
            ("no temperature", '''
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    scores = [zv @ prototypes.T for zv in z]
    total = 0.0
    for i in range(n_global):
        with torch.no_grad():
            q = sk.swav_codes(scores[i].detach(), epsilon, iters)
        others = [v for v in range(len(z)) if v != i]
        total = total + sum(-(q * F.log_softmax(scores[v], dim=1)).sum(1).mean() for v in others) / len(others)
    return total / n_global'''),
            ("a crop also predicts its own code", '''
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    scores = [zv @ prototypes.T for zv in z]
    total = 0.0
    for i in range(n_global):
        with torch.no_grad():
            q = sk.swav_codes(scores[i].detach(), epsilon, iters)
        total = total + sum(-(q * F.log_softmax(scores[v] / tau, dim=1)).sum(1).mean() for v in range(len(z))) / len(z)
    return total / n_global'''),
            ("summed over the predicting crops, not averaged", '''
def swav_loss(z, prototypes, n_global=2, epsilon=0.05, tau=0.1, iters=3):
    scores = [zv @ prototypes.T for zv in z]
    total = 0.0
    for i in range(n_global):
        with torch.no_grad():
            q = sk.swav_codes(scores[i].detach(), epsilon, iters)
        others = [v for v in range(len(z)) if v != i]
        total = total + sum(-(q * F.log_softmax(scores[v] / tau, dim=1)).sum(1).mean() for v in others)
    return total / n_global'''),
        ],
    },
    "06": {
        "nce_loss": [
            ("noise mass 1/N instead of m/N", '''
def nce_loss(f, idx, noise, bank, tau, Z):
    n = len(bank)
    p_pos = torch.exp((f * bank[idx]).sum(1) / tau) / Z
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise]) / tau) / Z
    mass = 1 / n
    return -(torch.log(p_pos / (p_pos + mass)) + torch.log(mass / (p_noise + mass)).sum(1)).mean()'''),
            ("no temperature", '''
def nce_loss(f, idx, noise, bank, tau, Z):
    n, m = len(bank), noise.shape[1]
    p_pos = torch.exp((f * bank[idx]).sum(1)) / Z
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise])) / Z
    mass = m / n
    return -(torch.log(p_pos / (p_pos + mass)) + torch.log(mass / (p_noise + mass)).sum(1)).mean()'''),
            ("summed over the batch, not averaged", '''
def nce_loss(f, idx, noise, bank, tau, Z):
    n, m = len(bank), noise.shape[1]
    p_pos = torch.exp((f * bank[idx]).sum(1) / tau) / Z
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise]) / tau) / Z
    mass = m / n
    return -(torch.log(p_pos / (p_pos + mass)) + torch.log(mass / (p_noise + mass)).sum(1)).sum()'''),
            ("log h for the noise samples, not log(1 - h)", '''
def nce_loss(f, idx, noise, bank, tau, Z):
    n, m = len(bank), noise.shape[1]
    p_pos = torch.exp((f * bank[idx]).sum(1) / tau) / Z
    p_noise = torch.exp(torch.einsum("bd,bmd->bm", f, bank[noise]) / tau) / Z
    mass = m / n
    return -(torch.log(p_pos / (p_pos + mass)) + torch.log(p_noise / (p_noise + mass)).sum(1)).mean()'''),
        ],
        "mc_normalizer": [
            ("no factor N", '''
def mc_normalizer(f, noise, bank, tau):
    return float(torch.exp(torch.einsum("bd,bmd->bm", f.double(), bank[noise].double()) / tau).mean())'''),
            ("summed over the noise samples, not averaged", '''
def mc_normalizer(f, noise, bank, tau):
    scores = torch.exp(torch.einsum("bd,bmd->bm", f.double(), bank[noise].double()) / tau)
    return float(scores.sum(1).mean() * len(bank))'''),
            ("no temperature", '''
def mc_normalizer(f, noise, bank, tau):
    scores = torch.exp(torch.einsum("bd,bmd->bm", f.double(), bank[noise].double()))
    return float(scores.mean() * len(bank))'''),
            ("the first image's samples only", '''
def mc_normalizer(f, noise, bank, tau):
    scores = torch.exp(torch.einsum("bd,bmd->bm", f.double(), bank[noise].double()) / tau)
    return float(scores[0].mean() * len(bank))'''),
        ],
    },
    "07": {
        "cell_summary": [
            ("population std (divides by n)", '''
def cell_summary(lines, key):
    groups = {}
    for line in lines:
        if line.get(key) is not None:
            groups.setdefault((line["dataset"], line["method"]), []).append(float(line[key]))
    out = {}
    for cell, values in groups.items():
        n = len(values)
        mean = sum(values) / n
        out[cell] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n), n)
    return out'''),
            ("keys (method, dataset), transposed", '''
def cell_summary(lines, key):
    groups = {}
    for line in lines:
        if line.get(key) is not None:
            groups.setdefault((line["method"], line["dataset"]), []).append(float(line[key]))
    out = {}
    for cell, values in groups.items():
        n = len(values)
        mean = sum(values) / n
        out[cell] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0, n)
    return out'''),
            ("the variance, not the standard deviation", '''
def cell_summary(lines, key):
    groups = {}
    for line in lines:
        if line.get(key) is not None:
            groups.setdefault((line["dataset"], line["method"]), []).append(float(line[key]))
    out = {}
    for cell, values in groups.items():
        n = len(values)
        mean = sum(values) / n
        out[cell] = (mean, sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0, n)
    return out'''),
        ],
        "welch": [
            ("population variances (divides by n)", '''
def welch(a, b):
    def stats(x):
        n = len(x)
        m = sum(x) / n
        return m, sum((v - m) ** 2 for v in x) / n, n
    ma, va, na = stats([float(v) for v in a])
    mb, vb, nb = stats([float(v) for v in b])
    ea, eb = va / na, vb / nb
    return (ma - mb) / math.sqrt(ea + eb), (ea + eb) ** 2 / (ea ** 2 / (na - 1) + eb ** 2 / (nb - 1))'''),
            ("Student's pooled t, df = na + nb - 2", '''
def welch(a, b):
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    sp = (sum((v - ma) ** 2 for v in a) + sum((v - mb) ** 2 for v in b)) / (na + nb - 2)
    return float((ma - mb) / math.sqrt(sp * (1 / na + 1 / nb))), float(na + nb - 2)'''),
            ("df with n, not n - 1, in the denominators", '''
def welch(a, b):
    def stats(x):
        n = len(x)
        m = sum(x) / n
        return m, sum((v - m) ** 2 for v in x) / (n - 1), n
    ma, va, na = stats([float(v) for v in a])
    mb, vb, nb = stats([float(v) for v in b])
    ea, eb = va / na, vb / nb
    return (ma - mb) / math.sqrt(ea + eb), (ea + eb) ** 2 / (ea ** 2 / na + eb ** 2 / nb)'''),
        ],
    },
    "08": {
        "square_box": [
            ("crop offset floored, not rounded", '''
def square_box(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    return nw, nh, (nw - size) // 2, (nh - size) // 2'''),
            ("longer side rounded, not truncated", '''
def square_box(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(round(size * long / short))
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    return nw, nh, int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))'''),
            ("width and height swapped", '''
def square_box(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (new_long, size) if w <= h else (size, new_long)
    return nw, nh, int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))'''),
            ("the longer side resized to size (Resize(size) read as a maximum)", '''
def square_box(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short = int(size * short / long)
    nw, nh = (new_short, size) if w <= h else (size, new_short)
    return nw, nh, int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))'''),
            ("crop at the full difference, not half of it", '''
def square_box(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    return nw, nh, nw - size, nh - size'''),
        ],
        "nearest_training": [
            ("features not L2-normalised (raw dot products)", '''
def nearest_training(query, bank, k):
    return (query.float() @ bank.float().T).topk(k, dim=1).indices'''),
            ("normalised over the wrong axis (dim=0)", '''
def nearest_training(query, bank, k):
    sims = F.normalize(query.float(), dim=0) @ F.normalize(bank.float(), dim=0).T
    return sims.topk(k, dim=1).indices'''),
            ("Euclidean distance, not cosine similarity", '''
def nearest_training(query, bank, k):
    return torch.cdist(query.float(), bank.float()).topk(k, dim=1, largest=False).indices'''),
            ("the least similar first (ascending sort)", '''
def nearest_training(query, bank, k):
    sims = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    return sims.argsort(dim=1)[:, :k]'''),
            ("transposed: top k over the queries (bank x query)", '''
def nearest_training(query, bank, k):
    sims = F.normalize(bank.float(), dim=1) @ F.normalize(query.float(), dim=1).T
    return sims.topk(min(k, sims.shape[0]), dim=0).indices'''),
            ("skips the first neighbour (off by one, as if the query were in the bank)", '''
def nearest_training(query, bank, k):
    sims = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    return sims.topk(min(k + 1, sims.shape[1]), dim=1).indices[:, 1:k + 1]'''),
        ],
        "cluster_purity": [
            ("purity over all images, not the cluster's", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in torch.unique(clusters).tolist():
        counts = torch.bincount(labels[clusters == c])
        best = int(counts.argmax())
        out[c] = (best, float(counts[best]) / len(labels))
    return out'''),
            ("the share of the label's images in the cluster (recall, not purity)", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in torch.unique(clusters).tolist():
        counts = torch.bincount(labels[clusters == c])
        best = int(counts.argmax())
        out[c] = (best, float(counts[best]) / int((labels == best).sum()))
    return out'''),
            ("a tie goes to the largest label", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in torch.unique(clusters).tolist():
        member = labels[clusters == c]
        counts = torch.bincount(member)
        best = len(counts) - 1 - int(counts.flip(0).argmax())
        out[c] = (best, float(counts[best]) / len(member))
    return out'''),
            ("arguments swapped: the most frequent cluster of each label", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in torch.unique(labels).tolist():
        member = clusters[labels == c]
        counts = torch.bincount(member)
        best = int(counts.argmax())
        out[c] = (best, float(counts[best]) / len(member))
    return out'''),
            ("the count, not the fraction", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in torch.unique(clusters).tolist():
        counts = torch.bincount(labels[clusters == c])
        best = int(counts.argmax())
        out[c] = (best, float(counts[best]))
    return out'''),
            ("clusters 0 .. max - 1 (off by one: the last cluster is missing)", '''
def cluster_purity(clusters, labels):
    out = {}
    for c in range(int(clusters.max())):
        member = labels[clusters == c]
        if len(member):
            counts = torch.bincount(member)
            best = int(counts.argmax())
            out[c] = (best, float(counts[best]) / len(member))
    return out'''),
        ],
    },
}
