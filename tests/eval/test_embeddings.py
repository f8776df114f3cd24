"""Embedding files in and out, a tiny CLIP through save_pretrained/from_pretrained, `dp eval retrieval`."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.data.formats.native import load_native
from dp_cli.errors import DataError, ModelError
from dp_cli.eval.embeddings import embed_dataset, load_clip, load_embeddings, save_embeddings


@pytest.mark.parametrize("name,ids", [("e.safetensors", [3, 1, 3]), ("e.npy", ["a", "b", "a"]), ("e.npy", [5, 6, 7])])
def test_embedding_files_round_trip(tmp_path, name, ids):
    emb = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    files = save_embeddings(tmp_path / name, emb, ids)
    assert all(f.exists() for f in files)
    back, back_ids = load_embeddings(tmp_path / name)
    assert np.array_equal(back, emb) and back_ids == ids


def test_npz_and_json_sidecar(tmp_path):
    emb = np.eye(3, dtype=np.float64)
    np.savez(tmp_path / "e.npz", embeddings=emb, ids=np.array([1, 2, 3]))
    assert load_embeddings(tmp_path / "e.npz")[1] == [1, 2, 3]
    np.save(tmp_path / "f.npy", emb)
    (tmp_path / "f.ids.json").write_text('["x", "y", "z"]')
    back, ids = load_embeddings(tmp_path / "f.npy")
    assert back.dtype == np.float32 and ids == ["x", "y", "z"]


def _retrieval_json(queries, gallery) -> dict:
    res = CliRunner().invoke(app, ["--json", "eval", "retrieval", "--queries", str(queries), "--gallery", str(gallery)])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_ids_mean_the_same_whichever_file_holds_them(tmp_path):
    emb = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    np.save(tmp_path / "q.npy", emb)
    (tmp_path / "q.ids.txt").write_text("0\n0\n1\n7\n")
    np.save(tmp_path / "g.npy", emb)
    np.save(tmp_path / "g.ids.npy", np.array([0.0, 0.0, 1.0, 7.0]))  # a float array of whole numbers
    assert load_embeddings(tmp_path / "g.npy")[1] == [0, 0, 1, 7]
    assert _retrieval_json(tmp_path / "q.npy", tmp_path / "g.npy")["num_evaluated"] == 4
    # zero-padded ids stay strings in every sidecar: a .txt and a JSON list of them match each other
    (tmp_path / "q.ids.txt").write_text("007\n007\n012\n013\n")
    (tmp_path / "g.ids.npy").unlink()
    (tmp_path / "g.ids.json").write_text('["007", "007", "012", "013"]')
    assert load_embeddings(tmp_path / "q.npy")[1] == ["007", "007", "012", "013"]
    out = _retrieval_json(tmp_path / "q.npy", tmp_path / "g.npy")
    assert out["num_evaluated"] == 4 and out["rank"]["R1"] == 100.0
    (tmp_path / "q.ids.txt").write_text("1\n01\n1\n01\n")  # two persons, not one
    assert load_embeddings(tmp_path / "q.npy")[1] == [1, "01", 1, "01"]


def test_files_that_share_no_person_are_an_error_not_zeros(tmp_path):
    queries = _npy_with_ids(tmp_path / "q.npy", np.ones((2, 4), np.float32))
    np.save(tmp_path / "g.npy", np.ones((2, 4), np.float32))
    (tmp_path / "g.ids.txt").write_text("p0\np1\n")
    res = CliRunner().invoke(app, ["eval", "retrieval", "--queries", str(queries), "--gallery", str(tmp_path / "g.npy")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    line = " ".join(res.output.split())
    assert f"no person id of {queries} is in {tmp_path / 'g.npy'}" in line and "'p0'" in line


def test_fractional_ids_are_refused(tmp_path):
    np.save(tmp_path / "e.npy", np.ones((2, 4), np.float32))
    np.save(tmp_path / "e.ids.npy", np.array([1.0, 1.5]))
    with pytest.raises(DataError, match=r"e.npy: id 1 is 1.5, not a whole number"):
        load_embeddings(tmp_path / "e.npy")


def test_embedding_file_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    with pytest.raises(DataError, match=r"a.npy: no person ids beside it"):
        load_embeddings(tmp_path / "a.npy")
    (tmp_path / "a.ids.txt").write_text("1\n2\n")
    with pytest.raises(DataError, match="3 embedding rows but 2 ids"):
        load_embeddings(tmp_path / "a.npy")
    bad = np.ones((2, 2))
    bad[1, 0] = np.nan
    save_embeddings(tmp_path / "b.npy", bad, [1, 2])
    with pytest.raises(DataError, match="row 1 holds NaN"):
        load_embeddings(tmp_path / "b.npy")
    from safetensors.numpy import save_file

    save_file({"emb": np.ones((2, 2), np.float32)}, str(tmp_path / "c.safetensors"))
    with pytest.raises(DataError, match="missing tensor"):
        load_embeddings(tmp_path / "c.safetensors")


def _npy_with_ids(path, arr, n=None):
    np.save(path, arr)
    path.with_name(path.stem + ".ids.txt").write_text("".join(f"{i}\n" for i in range(len(arr) if n is None else n)))
    return path


def _object_npz(path):
    np.savez(path, embeddings=np.array([[1, 2]] * 3, dtype=object), ids=np.arange(3))


@pytest.mark.parametrize("name,write,message", [
    ("one_d.npy", lambda p: _npy_with_ids(p, np.ones(3, np.float32)), r"one_d.npy: .*non-empty \(N, D\).*\(3,\)"),
    ("three_d.npy", lambda p: _npy_with_ids(p, np.ones((3, 2, 2))), r"three_d.npy: .*got shape \(3, 2, 2\)"),
    ("empty.npy", lambda p: _npy_with_ids(p, np.zeros((0, 4))), r"empty.npy: .*got shape \(0, 4\)"),
    ("text.npy", lambda p: _npy_with_ids(p, np.array([["a", "b"]] * 3)), r"text.npy: embeddings must be numeric"),
    ("junk.npy", lambda p: p.write_text("junk\n"), r"junk.npy: not a NumPy .npy file \(no .npy header\)"),
    ("zero.npy", lambda p: p.write_bytes(b""), r"zero.npy: not a NumPy .npy file \(it is empty\)"),
    ("cut.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr'"), r"cut.npy: not a readable NumPy .npy"),
    ("junk.npz", lambda p: p.write_text("junk\n"), r"junk.npz: not a NumPy .npz file \(not a zip archive\)"),
    ("keys.npz", lambda p: np.savez(p, emb=np.ones((2, 2))), r"keys.npz: missing array\(s\) embeddings, ids"),
    ("objects.npz", _object_npz, r"objects.npz: cannot read its arrays \(Object arrays"),
])
def test_malformed_embedding_files_are_data_errors(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(DataError, match=message) as info:
        load_embeddings(tmp_path / name)
    assert info.value.hint and "\n" not in str(info.value)


def test_malformed_id_sidecars_are_data_errors(tmp_path):
    emb = np.ones((3, 2), np.float32)
    np.save(tmp_path / "a.npy", emb)
    (tmp_path / "a.ids.txt").write_bytes(b"\xff\xfe1\n2\n3\n")
    with pytest.raises(DataError, match=r"a.ids.txt: not UTF-8 text"):
        load_embeddings(tmp_path / "a.npy")
    np.save(tmp_path / "b.npy", emb)
    (tmp_path / "b.ids.json").write_text('[1, {"person": 2}, 3]')
    with pytest.raises(DataError, match=r"b.ids.json: entry 1 is \{\"person\": 2\}, not an integer or a string"):
        load_embeddings(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", emb)
    (tmp_path / "c.ids.npy").write_text("junk\n")
    with pytest.raises(DataError, match=r"c.ids.npy: not a NumPy .npy file"):
        load_embeddings(tmp_path / "c.npy")


def test_cli_retrieval_embedding_sizes_differ(tmp_path):
    queries = _npy_with_ids(tmp_path / "queries.npy", np.ones((5, 8), np.float32))
    gallery = _npy_with_ids(tmp_path / "gallery.npy", np.ones((6, 4), np.float32))
    res = CliRunner().invoke(app, ["eval", "retrieval", "--queries", str(queries), "--gallery", str(gallery)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    line = " ".join(res.output.split())  # rich may wrap the one line at the runner's width
    assert f"{queries} has 8 values per row, {gallery} has 4" in line and "same model" in line


@pytest.mark.parametrize("name", ["junk.npy", "junk.npz"])
def test_cli_retrieval_junk_file_is_one_line(tmp_path, name):
    (tmp_path / name).write_text("junk\n")
    (tmp_path / "junk.ids.txt").write_text("1\n")
    gallery = _npy_with_ids(tmp_path / "gallery.npy", np.ones((2, 4), np.float32))
    res = CliRunner().invoke(app, ["eval", "retrieval", "--queries", str(tmp_path / name), "--gallery", str(gallery)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "pickle" not in res.output
    assert f"{name}: not a NumPy" in " ".join(res.output.split())


def test_tiny_clip_embeds_a_split(tiny_clip, dataset):
    model, tok = load_clip(str(tiny_clip), "cpu")
    ds = load_native(dataset)
    calls = []
    emb = embed_dataset(model, tok, ds, "test", size=(48, 24), batch_size=3, progress=calls.append)
    assert emb.gallery_emb.shape == (8, 8) and emb.query_emb.shape == (16, 8)
    assert np.allclose(np.linalg.norm(emb.query_emb, axis=1), 1, atol=1e-5)
    assert emb.gallery_ids == [r.person_id for r in ds.records] and emb.query_keys[1] == "p0_0#1"
    assert sum(calls) == 24
    again = embed_dataset(model, tok, ds, "test", size=(48, 24), batch_size=64)
    assert np.allclose(again.gallery_emb, emb.gallery_emb, atol=1e-5)  # batching does not change results
    with pytest.raises(DataError, match="no records in split 'train'"):
        embed_dataset(model, tok, ds, "train")


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load a CLIP model: .*does not exist") as info:
        load_clip(str(tmp_path / "nothing"))
    assert "Repo id" not in str(info.value)


def test_cli_retrieval_model_then_files(tiny_clip, dataset, tmp_path):
    runner = CliRunner()
    fig, saved = tmp_path / "cmc.png", tmp_path / "emb"
    res = runner.invoke(app, ["--json", "eval", "retrieval", "--dataset", str(dataset), "--model", str(tiny_clip),
                              "--image-size", "48x24", "--figure", str(fig), "--save-embeddings", str(saved)])
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout)
    assert set(first["rank"]) == {"R1", "R5", "R10"} and first["num_queries"] == 16 and first["num_gallery"] == 8
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size == (640, 420)
    res = runner.invoke(app, ["--json", "eval", "retrieval", "--queries", str(saved / "queries.npy"),
                              "--gallery", str(saved / "gallery.npy")])
    assert res.exit_code == 0, res.output
    second = json.loads(res.stdout)
    assert second["rank"] == first["rank"] and second["mAP"] == pytest.approx(first["mAP"])


def test_cli_retrieval_usage_and_data_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "retrieval"])
    assert res.exit_code == 2 and "--dataset (or [data] dataset) and --model" in res.output
    res = runner.invoke(app, ["eval", "retrieval", "--queries", str(tmp_path / "q.npy"), "--gallery",
                              str(tmp_path / "g.npy")])
    assert res.exit_code == 1 and "q.npy: embedding file not found" in res.output
    res = runner.invoke(app, ["eval", "retrieval", "--ks", "1,x"])
    assert res.exit_code == 2 and "--ks" in res.output
    res = runner.invoke(app, ["eval", "retrieval", "--ks", "0"])
    assert res.exit_code == 2 and "ks" in res.output  # a bad option value: a usage error
    for sub in ("retrieval", "edits", "captions"):
        assert runner.invoke(app, ["eval", sub, "--help"]).exit_code == 0


def test_image_size_flag_forms():
    from dp_cli.eval.config import EvalConfig

    assert EvalConfig(image_size=[64]).image_size == [64, 64]  # what '--image-size 64' parses to
    assert EvalConfig(image_size=[384, 128]).image_size == [384, 128]
    res = CliRunner().invoke(app, ["eval", "retrieval", "--queries", "q.npy", "--gallery", "g.npy",
                                   "--image-size", "6x4"])
    assert res.exit_code == 2 and "384x128 as a flag" in res.output and "Traceback" not in res.output  # usage error
    from dp_cli.commands.eval import _int_list

    # the comma form is what --help shows the default in
    assert _int_list("384,128", "--image-size", "x") == _int_list("384x128", "--image-size", "x") == [384, 128]


def test_cli_retrieval_uses_project_file(tiny_clip, dataset, tmp_path):
    project = tmp_path / "dp.toml"
    project.write_text(f'[data]\ndataset = "{dataset}"\n\n[eval]\nmodel = "{tiny_clip}"\nimage_size = [32, 32]\n'
                       f'ks = [1, 2]\n')
    res = CliRunner().invoke(app, ["--config", str(project), "--json", "eval", "retrieval"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["rank"]) == {"R1", "R2"} and out["num_gallery"] == 8
    project.write_text("[eval]\nbatch_sise = 3\n")
    res = CliRunner().invoke(app, ["--config", str(project), "eval", "retrieval"])
    assert res.exit_code == 1 and "did you mean 'batch_size'" in res.output
