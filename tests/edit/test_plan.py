"""Planning variants from a dataset and a catalog; manifest bookkeeping."""

from __future__ import annotations

import json

import pytest

from dp_cli.data.formats.native import load_native
from dp_cli.edit.config import EditConfig
from dp_cli.edit.manifest import finished_ids, merge_manifest, read_rows, shard_path
from dp_cli.edit.plan import load_catalog, plan_jobs
from dp_cli.errors import DataError


def plan(world, **kw):
    cfg = EditConfig(dataset=world, catalog=world / "catalog", **kw)
    return plan_jobs(load_native(world), load_catalog(world / "catalog"), cfg)


def test_a_variant_is_one_person_with_one_set_of_references_on_all_their_images(world):
    jobs = plan(world, variants_per_person=2, attributes_per_variant=2)
    ds = load_native(world)
    train = ds.split("train")
    assert len(jobs) == 2 * len(train)
    assert len({j.id for j in jobs}) == len(jobs)
    by_variant = {}
    for j in jobs:
        by_variant.setdefault(j.variant, set()).add(tuple(str(r.image) for r in j.references))
        assert j.variant.startswith(f"{j.record.person_id}__v")
        assert len(j.references) == 2 and all(r.type in ("hair", "uppercloth", "bottomcloth") for r in j.references)
    assert all(len(refs) == 1 for refs in by_variant.values())
    assert len(by_variant) == 2 * len({r.person_id for r in train})


def test_plan_is_seeded_and_person_plans_do_not_depend_on_each_other(world):
    a = [(j.id, [r.label for r in j.references], j.seed) for j in plan(world, seed=1)]
    b = [(j.id, [r.label for r in j.references], j.seed) for j in plan(world, seed=1)]
    assert a == b
    c = [(j.id, [r.label for r in j.references], j.seed) for j in plan(world, seed=2)]
    assert a != c
    one = plan(world, seed=1, persons=1)
    assert len({j.record.person_id for j in one}) == 1
    assert all(row in a for row in [(j.id, [r.label for r in j.references], j.seed) for j in one])


def test_catalog_without_the_requested_type_is_an_error(world):
    with pytest.raises(DataError, match=r"no reference of type\(s\) \['dress'\]"):
        plan(world, types=["dress"])


def test_catalog_rows_are_checked(tmp_path):
    (tmp_path / "catalog.jsonl").write_text(json.dumps({"image": "a.png", "type": "wings", "label": "x"}) + "\n")
    with pytest.raises(DataError, match="catalog.jsonl:1: unknown attribute type 'wings'"):
        load_catalog(tmp_path)


def test_merge_folds_shards_without_duplicates_in_plan_order(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "images" / f"{name}.png").write_bytes(b"x")
    rows = {k: {"id": k, "image": f"images/{k}.png"} for k in "abc"}
    (tmp_path / "edits.jsonl").write_text(json.dumps(rows["b"]) + "\n")
    shard_path(tmp_path, 0, 2).write_text(json.dumps(rows["c"]) + "\n" + json.dumps(rows["b"]) + "\n")
    shard_path(tmp_path, 1, 2).write_text(json.dumps(rows["a"]) + "\n" + '{"id": "d", "ima')  # cut mid-line
    assert finished_ids(tmp_path) == {"a", "b", "c"}
    assert merge_manifest(tmp_path, {"a": 0, "b": 1, "c": 2}) == 3
    assert [r.id for r in read_rows(tmp_path / "edits.jsonl")] == ["a", "b", "c"]
    assert not list(tmp_path.glob("edits.shard-*"))


def test_config_checks_types_and_counts():
    assert EditConfig(types="hair_shoes").types == ["hair", "shoes"]
    with pytest.raises(ValueError, match="unknown attribute type"):
        EditConfig(types=["wings"])
    with pytest.raises(ValueError, match="attributes_per_variant=3 is more than the 2"):
        EditConfig(types=["hair", "shoes"], attributes_per_variant=3)


def test_model_reference_resolution(tmp_path, monkeypatch):
    from dp_cli.edit.runner import resolve_model
    from dp_cli.errors import ModelError

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "dp_config.json").write_text("{}")
    assert resolve_model(str(run)) == str(run / "model")  # the `dp train` run folder: its final model
    assert resolve_model(str(run / "model")) == str(run / "model")
    assert resolve_model("someone/dp-model") == "someone/dp-model"  # a hub id is passed on
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(tmp_path / "nope"))
    monkeypatch.setattr("dp_cli.edit.runner.TOY_MODEL", tmp_path / "no-toy")
    with pytest.raises(ModelError, match="--model"):
        resolve_model(None)
    monkeypatch.setattr("dp_cli.edit.runner.TOY_MODEL", run / "model")
    assert resolve_model(None) == str(run / "model")


def test_variants_replace_only_types_the_person_shows_and_not_with_what_they_wear(world):
    from dp_cli.edit.plan import present_types

    ds = load_native(world)
    cfg = EditConfig(dataset=world, catalog=world / "catalog", types=["hair", "hat", "bag"],
                     attributes_per_variant=2, variants_per_person=3)
    jobs = plan_jobs(ds, load_catalog(world / "catalog"), cfg, types_of=lambda rs: present_types(ds, rs, cfg.types))
    assert jobs
    for job in jobs:
        person = [r for r in ds.split("train") if r.person_id == job.record.person_id]
        shown = present_types(ds, person, cfg.types)
        assert {r.type for r in job.references} <= shown
        assert len(job.references) == min(2, len(shown))
        for ref in job.references:
            assert ref.label != (job.record.extra["toy"]["attributes"].get(ref.type) or {}).get("label")
    nobody = {r.person_id for r in ds.split("train")} - {j.record.person_id for j in jobs}
    assert all(not present_types(ds, [r for r in ds.split("train") if r.person_id == p], cfg.types) for p in nobody)


def test_a_missing_catalog_is_named_as_the_catalog(tmp_path):
    with pytest.raises(DataError, match=r"nope: catalog not found") as info:
        load_catalog(tmp_path / "nope")
    assert "--catalog" in info.value.hint
    with pytest.raises(DataError, match=r"no catalog.jsonl in this catalog folder"):
        load_catalog(tmp_path)
