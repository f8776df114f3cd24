"""Retrieval metrics: hand-computed cases, ties, missing ids, and equality with the full-argsort reference."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dp_cli.eval.retrieval import metrics_from_similarity, reference_metrics, retrieval_metrics, similarity


def assert_same(a, b):
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key in da:
        if isinstance(da[key], float):
            assert math.isclose(da[key], db[key], rel_tol=1e-9, abs_tol=1e-9), key
        elif key == "cmc":
            assert np.allclose(da[key], db[key], rtol=0, atol=1e-9)
        else:
            assert da[key] == db[key], key


def test_hand_computed_case():
    sim = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.8, 0.7, 0.1]], np.float32)
    # query A: positives at ranks 1, 3 -> AP (1/1 + 2/3)/2, INP 2/3; query B: ranks 2, 4 -> AP (1/2 + 2/4)/2, INP 2/4
    m = metrics_from_similarity(sim, ["A", "B"], ["A", "B", "A", "B"], ks=(1, 2, 5))
    assert m.rank == {1: 50.0, 2: 100.0, 5: 100.0}
    assert m.mAP == pytest.approx(100 * ((1 + 2 / 3) / 2 + 0.5) / 2)
    assert m.mINP == pytest.approx(100 * (2 / 3 + 0.5) / 2)
    assert m.cmc[:4] == [50.0, 100.0, 100.0, 100.0]


def test_ties_rank_lower_gallery_index_first():
    sim = np.array([[0.5, 0.5, 0.5]], np.float32)
    m = metrics_from_similarity(sim, [1], [2, 1, 1], ks=(1, 2))
    # stable descending order keeps 0, 1, 2: positives at ranks 2 and 3
    assert m.rank == {1: 0.0, 2: 100.0}
    assert m.mAP == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)
    assert m.mINP == pytest.approx(100 * 2 / 3)
    assert_same(m, reference_metrics(sim, [1], [2, 1, 1], ks=(1, 2)))


def test_query_without_gallery_person_is_reported_not_nan():
    sim = np.array([[0.9, 0.1], [0.3, 0.2], [0.5, 0.4]], np.float32)
    m = metrics_from_similarity(sim, [1, 7, 7], [1, 2])
    assert (m.missing_queries, m.missing_person_ids, m.num_evaluated, m.num_queries) == (2, [7], 1, 3)
    assert m.rank[1] == 100.0 and m.mAP == 100.0 and m.mINP == 100.0
    none = metrics_from_similarity(sim[1:], [7, 8], [1, 2])
    assert none.num_evaluated == 0 and none.missing_person_ids == [7, 8]
    assert not any(math.isnan(v) for v in [none.mAP, none.mINP, *none.rank.values()])


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="sizes differ"):
        retrieval_metrics(np.ones((2, 3)), [1, 2], np.ones((2, 4)), [1, 2])
    with pytest.raises(ValueError, match="ids do not match"):
        retrieval_metrics(np.ones((2, 3)), [1], np.ones((2, 3)), [1, 2])
    with pytest.raises(ValueError, match="ks"):
        retrieval_metrics(np.ones((2, 3)), [1, 2], np.ones((2, 3)), [1, 2], ks=(0,))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25), st.integers(1, 40), st.integers(1, 6), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_chunked_equals_full_argsort_with_ties(nq, ng, levels, chunk, seed):
    rng = np.random.default_rng(seed)
    sim = rng.integers(0, levels, (nq, ng)).astype(np.float32) / levels  # few levels: many ties
    qi, gi = rng.integers(0, 5, nq), rng.integers(0, 5, ng)
    assert_same(metrics_from_similarity(sim, qi, gi, ks=(1, 3, 10), chunk=chunk),
                reference_metrics(sim, qi, gi, ks=(1, 3, 10)))


def _exact_unit_vectors(rng, n):
    """Rows whose cosine similarities are exact in float32 (+-1 one-hot, or four entries of +-0.5)."""
    out = np.zeros((n, 4), np.float32)
    for i in range(n):
        if rng.random() < 0.5:
            out[i, rng.integers(4)] = rng.choice([-1.0, 1.0])
        else:
            out[i] = rng.choice([-0.5, 0.5], 4)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_embeddings_path_equals_reference_on_tied_similarities(seed):
    rng = np.random.default_rng(seed)
    q, g = _exact_unit_vectors(rng, 30), _exact_unit_vectors(rng, 50)
    qi = [f"id{v}" for v in rng.integers(0, 8, 30)]
    gi = [f"id{v}" for v in rng.integers(0, 6, 50)]
    fast = retrieval_metrics(q * 3.0, qi, g, gi, chunk=7)  # scale must not matter (rows are normalised)
    assert_same(fast, reference_metrics(similarity(q, g).numpy(), qi, gi))


def test_random_embeddings_match_reference():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(300, 32)), rng.normal(size=(400, 32))
    ids = np.repeat(np.arange(100), 4)
    qi = rng.integers(0, 100, 300)
    fast = retrieval_metrics(q, qi, g, ids, chunk=64)
    assert_same(fast, reference_metrics(similarity(q, g).numpy(), qi, ids))
    assert 0 < fast.mAP < 100 and len(fast.cmc) == 50 and fast.cmc == sorted(fast.cmc)


def test_torch_inputs_with_grad_and_half_precision():
    import torch

    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
    qi, gi = rng.integers(0, 6, 20), rng.integers(0, 6, 30)
    ref = retrieval_metrics(q, qi, g, gi)
    tq = torch.tensor(q, dtype=torch.float32, requires_grad=True)
    assert_same(retrieval_metrics(tq, torch.tensor(qi), torch.tensor(g, dtype=torch.float32), gi), ref)
    half = retrieval_metrics(torch.tensor(q).half(), qi, torch.tensor(g).half(), gi)
    assert half.num_evaluated == ref.num_evaluated and abs(half.mAP - ref.mAP) < 5


@pytest.mark.parametrize("seed", range(3))
def test_torch_counting_path_equals_numpy_path(seed):
    """The path used on GPUs (torch comparisons), exercised on CPU."""
    import torch

    from dp_cli.eval.retrieval import positive_ranks

    rng = np.random.default_rng(seed)
    sim = torch.tensor(rng.integers(0, 3, (6, 15)) / 3, dtype=torch.float32)
    idx = torch.tensor(rng.integers(0, 15, (6, 4)))
    valid = torch.tensor(rng.random((6, 4)) < 0.8)
    a = positive_ranks(sim, idx, valid, use_numpy=True)
    b = positive_ranks(sim, idx, valid, use_numpy=False)
    assert np.array_equal(a, b)
    full = np.argsort(-sim.numpy(), axis=1, kind="stable")
    for r in range(6):
        for k in range(4):
            expect = int(np.flatnonzero(full[r] == int(idx[r, k]))[0]) if valid[r, k] else 15
            assert a[r, k] == expect


@pytest.mark.parametrize("seed", range(3))
def test_sorting_path_for_many_positives_equals_counting(seed):
    import torch

    from dp_cli.eval.retrieval import positive_ranks

    rng = np.random.default_rng(seed)
    sim = torch.tensor(rng.integers(0, 4, (5, 30)) / 4, dtype=torch.float32)
    idx = torch.tensor(rng.integers(0, 30, (5, 6)))
    valid = torch.tensor(rng.random((5, 6)) < 0.7)
    assert np.array_equal(positive_ranks(sim, idx, valid), positive_ranks(sim, idx, valid, sort_above=2))


def test_person_with_many_gallery_images_matches_reference():
    rng = np.random.default_rng(5)
    gi = np.concatenate([np.zeros(80, int), rng.integers(1, 5, 40)])
    qi = rng.integers(0, 5, 25)
    sim = (rng.integers(0, 9, (25, 120)) / 9).astype(np.float32)
    assert_same(metrics_from_similarity(sim, qi, gi, chunk=4), reference_metrics(sim, qi, gi))
