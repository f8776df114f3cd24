"""Person ids for export: train ids contiguous from 0, new identities right after them.

TBPS trainers (IRRA's readers) assert that the train person ids are 0..N-1 after the format's
offset. Generated identities get N, N+1, ...; val/test ids at or above N move up by the number of new
identities so that every person keeps a distinct id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dp_cli.data.dataset import PersonRecord


@dataclass
class IdPlan:
    """How ids were assigned: whether base ids were relabelled, the new range and the shift of the val/test ids
    that had to move (0 when none did)."""

    relabelled: bool
    first_new_id: int
    new_persons: int
    shift: int


def contiguous_train(records: list[PersonRecord]) -> bool:
    """Train person ids are exactly 0..N-1."""
    train = {r.person_id for r in records if r.split == "train"}
    return train == set(range(len(train)))


def relabel_map(records: list[PersonRecord]) -> dict[int, int]:
    """Train ids in sorted order -> 0..N-1, then the other ids in sorted order."""
    train = sorted({r.person_id for r in records if r.split == "train"})
    mapping = {pid: i for i, pid in enumerate(train)}
    for pid in sorted({r.person_id for r in records} - set(mapping)):
        mapping[pid] = len(mapping)
    return mapping


def assign_person_ids(base: list[PersonRecord], generated: list[PersonRecord], variants: list[str],
                      relabel: bool) -> tuple[list[PersonRecord], IdPlan]:
    """New records with final person ids: base (relabelled when asked and needed) + generated."""
    relabelled = relabel and not contiguous_train(base)
    mapping = relabel_map(base) if relabelled else {}
    train_ids = [mapping.get(r.person_id, r.person_id) for r in base if r.split == "train"]
    first_new = max(train_ids) + 1 if train_ids else 0
    new_ids: dict[str, int] = {}
    for v in variants:
        new_ids.setdefault(v, first_new + len(new_ids))
    shift = len(new_ids)
    train_set = set(train_ids)
    out, moved = [], False
    for r in base:
        pid = mapping.get(r.person_id, r.person_id)
        if shift and r.split != "train" and pid >= first_new and pid not in train_set:
            pid += shift
            moved = True
        out.append(replace(r, person_id=pid) if pid != r.person_id else r)
    out += [replace(r, person_id=new_ids[v]) for r, v in zip(generated, variants)]
    return out, IdPlan(relabelled, first_new, len(new_ids), shift if moved else 0)
