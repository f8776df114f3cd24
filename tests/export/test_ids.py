"""Person id assignment for export: contiguous train ids, new identities after them, no collisions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dp_cli.data.dataset import PersonRecord
from dp_cli.export.ids import assign_person_ids, contiguous_train


def _records(train: list[int], other: list[tuple[int, str]]) -> list[PersonRecord]:
    rows = [PersonRecord(f"t{i}", f"t{i}.png", pid, "train", ["c"]) for i, pid in enumerate(train)]
    return rows + [PersonRecord(f"o{i}", f"o{i}.png", pid, split, ["c"]) for i, (pid, split) in enumerate(other)]


@settings(max_examples=150, deadline=None)
@given(train=st.lists(st.integers(0, 40), min_size=1, max_size=20),
       other=st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["val", "test"])), max_size=15),
       variants=st.lists(st.sampled_from([f"{p}__v{k}" for p in range(5) for k in range(3)]), max_size=12))
def test_relabelled_ids_are_contiguous_and_distinct(train, other, variants):
    base = _records(train, other)
    gen = [PersonRecord(f"g{i}", f"g{i}.png", -1, "train", ["c"]) for i in range(len(variants))]
    out, plan = assign_person_ids(base, gen, variants, relabel=True)
    n_train, n_new = len(set(train)), len(set(variants))
    assert {r.person_id for r in out if r.split == "train"} == set(range(n_train + n_new))
    assert contiguous_train(out)
    assert (plan.first_new_id, plan.new_persons) == (n_train, n_new)
    # same person before -> same person after; different persons stay different
    before = {(r.id): r.person_id for r in base}
    after = {r.id: r.person_id for r in out}
    pairs = [(a, b) for a in before for b in before]
    assert all((before[a] == before[b]) == (after[a] == after[b]) for a, b in pairs)
    new_ids = {r.person_id for r in out if r.id.startswith("g")}
    assert not new_ids & {r.person_id for r in out if not r.id.startswith("g")}
    # one new id per variant, in first-appearance order
    assert [after[f"g{i}"] for i in range(len(variants))] == \
           [n_train + list(dict.fromkeys(variants)).index(v) for v in variants]


def test_contiguous_ids_are_kept_as_they_are():
    base = _records([0, 1, 1, 2], [(3, "test"), (4, "val")])
    out, plan = assign_person_ids(base, [], [], relabel=True)
    assert out == base and not plan.relabelled and plan.shift == 0


def test_the_shift_is_reported_only_when_a_val_or_test_id_moved():
    gen = [PersonRecord("g0", "g0.png", -1, "train", ["c"])]
    below = _records([0, 1, 3], [(2, "test")])  # test id 2 is below the first new id (4): it stays
    out, plan = assign_person_ids(below, gen, ["p0__v0"], relabel=False)
    assert plan.shift == 0 and [r.person_id for r in out if r.split == "test"] == [2]
    above = _records([0, 1], [(2, "test")])  # test id 2 is the first new id: it moves up by one
    out, plan = assign_person_ids(above, gen, ["p0__v0"], relabel=False)
    assert plan.shift == 1 and [r.person_id for r in out if r.split == "test"] == [3]
