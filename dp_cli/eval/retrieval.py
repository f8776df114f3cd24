"""Text-to-person retrieval metrics: Rank-k (CMC), mAP and mINP as the TBPS field computes them.

The definitions follow IRRA's `utils/metrics.py::rank`: cosine similarity of L2-normalised embeddings,
gallery sorted by descending similarity, a hit is any gallery image with the query's person id,
Rank-k = share of queries with a hit in the first k, AP = mean over the hits of (hits so far / rank),
INP = number of positives / rank of the last positive; all reported in percent.

Ties: IRRA sorts with `torch.argsort(descending=True)`, whose order among equal scores is unspecified.
dp defines it as a *stable* descending sort: among equal scores the lower gallery index ranks first
(`np.argsort(-sim, kind="stable")`). `reference_metrics` is that full-argsort computation.

`retrieval_metrics` gives the same numbers without sorting any row: per chunk of queries it only
finds the rank of each positive, i.e. the number of gallery items scoring above it (one comparison
pass over the chunk per positive slot; queries are grouped by their number of positives), plus,
only for positives tied with another item, the tied items with a lower index. Rank-k, AP and INP
follow from those ranks. Memory is bounded by the chunk (about 8M similarities by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)
CHUNK_ELEMENTS = 8_000_000  # similarity entries per chunk when `chunk` is not given (~32 MB float32)
SORT_ABOVE_POSITIVES = 64  # chunks whose queries have more positives than this sort their rows instead


@dataclass
class RetrievalMetrics:
    """Retrieval scores in percent; queries whose person has no gallery image are left out and listed."""

    rank: dict[int, float]  # k -> Rank-k (%)
    mAP: float
    mINP: float
    num_queries: int
    num_evaluated: int
    num_gallery: int
    missing_queries: int = 0  # queries whose person id has no gallery image (excluded)
    missing_person_ids: list = field(default_factory=list)
    cmc: list[float] = field(default_factory=list)  # CMC curve (%), ranks 1..len(cmc)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rank"] = {f"R{k}": v for k, v in self.rank.items()}
        return out

    def summary_rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [(f"Rank-{k}", round(v, 2)) for k, v in self.rank.items()]
        rows += [("mAP", round(self.mAP, 2)), ("mINP", round(self.mINP, 2)),
                 ("queries evaluated", f"{self.num_evaluated} / {self.num_queries}"),
                 ("gallery images", self.num_gallery)]
        if self.missing_queries:
            shown = ", ".join(map(str, self.missing_person_ids[:10]))
            more = " ..." if len(self.missing_person_ids) > 10 else ""
            rows.append(("queries without gallery match", f"{self.missing_queries} (person ids: {shown}{more})"))
        return rows


def _encode_ids(query_ids: Sequence, gallery_ids: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map arbitrary person ids (int or str) to dense ints shared by queries and gallery."""
    q, g = _as_array(query_ids), _as_array(gallery_ids)
    if q.dtype.kind != g.dtype.kind and not (q.dtype.kind in "iu" and g.dtype.kind in "iu"):
        q, g = q.astype(str), g.astype(str)
    uniq, inv = np.unique(np.concatenate([q, g]), return_inverse=True)
    return inv[: len(q)].astype(np.int64), inv[len(q):].astype(np.int64), uniq


def _as_array(ids: Sequence) -> np.ndarray:
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy().reshape(-1)
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)  # 3.0 is person 3, as the int 3 of the other side (not the string "3.0")
    return arr


def _check_inputs(query_emb, query_ids, gallery_emb, gallery_ids, ks) -> None:
    if query_emb.ndim != 2 or gallery_emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got {tuple(query_emb.shape)} and {tuple(gallery_emb.shape)}")
    if query_emb.shape[1] != gallery_emb.shape[1]:
        raise ValueError(f"query and gallery embedding sizes differ: {query_emb.shape[1]} vs {gallery_emb.shape[1]}")
    if len(query_ids) != query_emb.shape[0] or len(gallery_ids) != gallery_emb.shape[0]:
        raise ValueError(f"ids do not match embeddings: {len(query_ids)} query ids for {query_emb.shape[0]} rows, "
                         f"{len(gallery_ids)} gallery ids for {gallery_emb.shape[0]} rows")
    if gallery_emb.shape[0] == 0 or query_emb.shape[0] == 0:
        raise ValueError("empty query or gallery set")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")


def normalize(emb) -> "torch.Tensor":
    """Float32 torch tensor with L2-normalised rows (zero rows stay zero)."""
    import torch

    t = torch.as_tensor(np.asarray(emb) if not isinstance(emb, torch.Tensor) else emb.detach()).float()
    return torch.nn.functional.normalize(t, dim=1)


def similarity(query_emb, gallery_emb) -> "torch.Tensor":
    """Cosine similarity matrix (Q, G) of L2-normalised embeddings, float32."""
    return normalize(query_emb) @ normalize(gallery_emb).T


def retrieval_metrics(query_emb, query_ids: Sequence, gallery_emb, gallery_ids: Sequence,
                      ks: Sequence[int] = DEFAULT_KS, chunk: int | None = None, cmc_max_rank: int = 50,
                      device: str | None = None) -> RetrievalMetrics:
    """Rank-k, mAP, mINP (percent) of text queries against a gallery, computed in query chunks."""
    import torch

    _check_inputs(query_emb, query_ids, gallery_emb, gallery_ids, ks)
    dev = torch.device(device or "cpu")
    q = normalize(query_emb).to(dev)
    g = normalize(gallery_emb).to(dev)
    return _chunked(lambda rows: q[rows] @ g.T, query_ids, gallery_ids, g.shape[0], ks, chunk, cmc_max_rank, dev)


def metrics_from_similarity(sim, query_ids: Sequence, gallery_ids: Sequence, ks: Sequence[int] = DEFAULT_KS,
                            chunk: int | None = None, cmc_max_rank: int = 50) -> RetrievalMetrics:
    """The same metrics from a precomputed (Q, G) similarity matrix (numpy or torch), in row chunks."""
    import torch

    sim_t = torch.as_tensor(np.asarray(sim) if not isinstance(sim, torch.Tensor) else sim.detach())
    if sim_t.ndim != 2 or sim_t.shape != (len(query_ids), len(gallery_ids)):
        raise ValueError(f"similarity shape {tuple(sim_t.shape)} does not match {len(query_ids)} queries "
                         f"x {len(gallery_ids)} gallery ids")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    return _chunked(lambda rows: sim_t[rows], query_ids, gallery_ids, sim_t.shape[1], ks, chunk, cmc_max_rank,
                    sim_t.device)


def _chunked(sim_rows, query_ids, gallery_ids, G, ks, chunk, cmc_max_rank, dev) -> RetrievalMetrics:
    import torch

    q_pid, g_pid, uniq = _encode_ids(query_ids, gallery_ids)
    chunk = chunk or max(1, CHUNK_ELEMENTS // G)
    # gallery indices grouped by person: person p owns order[start[p]:start[p]+count[p]]
    order = np.argsort(g_pid, kind="stable")
    count = np.bincount(g_pid, minlength=len(uniq))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    has_pos = count[q_pid] > 0
    evaluated = np.flatnonzero(has_pos)
    evaluated = evaluated[np.argsort(count[q_pid[evaluated]], kind="stable")]  # chunks with similar P
    order_t = torch.as_tensor(order, device=dev)
    first_hits, aps, inps = [], [], []
    for lo in range(0, len(evaluated), chunk):
        rows = evaluated[lo: lo + chunk]
        sim = sim_rows(torch.as_tensor(rows, device=dev))
        pos_idx, pos_valid = _positives(q_pid[rows], start, count, order_t)
        fh, ap, inp = _scores_from_ranks(positive_ranks(sim, pos_idx, pos_valid), pos_valid.cpu().numpy())
        first_hits.append(fh)
        aps.append(ap)
        inps.append(inp)
        del sim
    return _summarise(first_hits, aps, inps, ks, cmc_max_rank, len(q_pid), G,
                      missing=q_pid[~has_pos], uniq=uniq)


def _positives(pids: np.ndarray, start: np.ndarray, count: np.ndarray, order_t) -> tuple:
    """Padded gallery indices (c, P) of each query's positives, and their validity mask."""
    import torch

    cnt = count[pids]
    P = int(cnt.max())
    offs = np.arange(P)[None, :]
    valid = offs < cnt[:, None]
    flat = np.where(valid, start[pids][:, None] + offs, 0)
    idx = order_t[torch.as_tensor(flat, device=order_t.device)]
    return idx, torch.as_tensor(valid, device=order_t.device)


def positive_ranks(sim, pos_idx, pos_valid, use_numpy: bool | None = None,
                   sort_above: int = SORT_ABOVE_POSITIVES) -> np.ndarray:
    """0-based rank of each positive under a stable descending sort (numpy (c, P)); invalid slots get G.

    One comparison pass per positive slot: rank = #{g: s_g > s_j} + #{g < j: s_g == s_j}. The second
    term is only computed for positives tied with some other item. CPU tensors are counted with numpy
    (counting booleans is several times faster there); other devices stay in torch. Persons with
    more than `sort_above` gallery images make the passes costlier than a sort: those rows are sorted.
    """
    import torch

    if pos_idx.shape[1] > sort_above:
        return _ranks_by_sorting(sim, pos_idx, pos_valid)
    on_cpu = sim.device.type == "cpu" if use_numpy is None else use_numpy
    s = sim.numpy() if on_cpu else sim
    idx = pos_idx.numpy() if on_cpu else pos_idx
    valid = pos_valid.cpu().numpy()
    G = sim.shape[1]
    pos_s = np.take_along_axis(s, idx, 1) if on_cpu else s.gather(1, idx)
    ranks = np.full(valid.shape, G, dtype=np.int64)
    for k in range(valid.shape[1]):
        p = pos_s[:, k: k + 1]
        above, equal = _count_rows(s > p), _count_rows(s == p)
        ranks[:, k] = np.where(valid[:, k], above, G)
        tied = np.flatnonzero(valid[:, k] & (equal > 1))
        if len(tied):
            j = idx[tied, k]
            ar = np.arange(G) if on_cpu else torch.arange(G, device=sim.device)
            t = tied if on_cpu else torch.as_tensor(tied, device=sim.device)
            ranks[tied, k] += _count_rows((s[t] == p[t]) & (ar[None, :] < j[:, None]))
    return ranks


def _ranks_by_sorting(sim, pos_idx, pos_valid) -> np.ndarray:
    """Positive ranks from a stable descending sort of each row of the chunk."""
    import torch

    order = torch.sort(sim, dim=1, descending=True, stable=True).indices
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(sim.shape[1], device=sim.device).expand_as(order))
    ranks = position.gather(1, pos_idx).cpu().numpy()
    return np.where(pos_valid.cpu().numpy(), ranks, sim.shape[1])


def _count_rows(mask) -> np.ndarray:
    """Number of True per row, as a numpy int64 array."""
    if isinstance(mask, np.ndarray):
        return mask.view(np.uint8).sum(1, dtype=np.int64)
    return mask.sum(1).cpu().numpy()


def _scores_from_ranks(ranks: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-hit rank, AP and INP per query from the 0-based ranks of its positives."""
    r = np.sort(ranks, axis=1).astype(np.float64)  # invalid slots (= G) sort last
    m = valid.sum(1)
    hit_no = np.arange(1, r.shape[1] + 1, dtype=np.float64)[None, :]
    ok = np.arange(r.shape[1])[None, :] < m[:, None]
    ap = np.where(ok, hit_no / (r + 1), 0.0).sum(1) / m
    inp = m / (r[np.arange(len(m)), m - 1] + 1)
    return r[:, 0].astype(np.int64), ap, inp


def _summarise(first_hits, aps, inps, ks, cmc_max_rank, num_queries, num_gallery, missing, uniq) -> RetrievalMetrics:
    fh = np.concatenate(first_hits) if first_hits else np.zeros(0, dtype=np.int64)
    n = len(fh)
    max_rank = min(max(cmc_max_rank, max(ks)), num_gallery)
    if n:
        hist = np.bincount(np.minimum(fh, max_rank), minlength=max_rank + 1)[:max_rank]
        cmc = (np.cumsum(hist) / n * 100).tolist()
        rank = {int(k): float(np.mean(fh < int(k)) * 100) for k in ks}
        m_ap, m_inp = float(np.mean(np.concatenate(aps)) * 100), float(np.mean(np.concatenate(inps)) * 100)
    else:
        cmc, rank, m_ap, m_inp = [], {int(k): 0.0 for k in ks}, 0.0, 0.0
    missing_ids = [_py(uniq[i]) for i in np.unique(missing)]
    return RetrievalMetrics(rank=rank, mAP=m_ap, mINP=m_inp, num_queries=num_queries, num_evaluated=n,
                            num_gallery=num_gallery, missing_queries=int(len(missing)),
                            missing_person_ids=missing_ids, cmc=[float(v) for v in cmc])


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def reference_metrics(sim, query_ids: Sequence, gallery_ids: Sequence, ks: Sequence[int] = DEFAULT_KS,
                      cmc_max_rank: int = 50) -> RetrievalMetrics:
    """The straightforward computation (full stable argsort of every row), for tests and benchmarks."""
    sim = np.asarray(sim)
    q_pid, g_pid, uniq = _encode_ids(query_ids, gallery_ids)
    keep = np.isin(q_pid, g_pid)
    order = np.argsort(-sim[keep], axis=1, kind="stable")
    matches = g_pid[order] == q_pid[keep][:, None]
    del order
    hits = np.cumsum(matches, axis=1)
    first = matches.argmax(axis=1)
    num_rel = matches.sum(1)
    pos_rank = np.arange(1, sim.shape[1] + 1)[None, :]
    ap = (hits / pos_rank * matches).sum(1) / np.maximum(num_rel, 1)
    last = sim.shape[1] - 1 - matches[:, ::-1].argmax(axis=1)
    inp = num_rel / (last + 1)
    return _summarise([first], [ap], [inp], ks, cmc_max_rank, len(q_pid), sim.shape[1],
                      missing=q_pid[~keep], uniq=uniq)
