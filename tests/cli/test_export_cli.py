"""`dp export` end to end through the CLI: summary on stderr, --json on stdout, config precedence."""

from __future__ import annotations

import json

from dp_cli.data.loading import load_dataset


def test_export_cuhk_summary_and_json(dp, tbps, tmp_path, export_kit):
    root = tbps("native", train_pids=(0, 3, 5), test_pids=(1, 7))
    out = tmp_path / "cuhk"
    result = dp("--json", "export", "--dataset", root, "--format", "cuhk-pedes", "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # only the JSON goes to stdout
    assert payload["splits"]["train"] == {"images": 6, "persons": 3, "captions": 6}
    assert payload["relabelled"] is True and payload["format"] == "cuhk-pedes"
    assert "counts per split" in result.stderr and "train" in result.stderr
    assert export_kit.irra_contract(out, "cuhk-pedes")["train"] == {0, 1, 2}


def test_export_with_edits_through_cli(dp, tbps, tmp_path, export_kit):
    root = tbps("rstpreid")
    ds = load_dataset(root)
    edits, notes = export_kit.write_edits(tmp_path / "edit", root, [(ds.records[0].id, 0, "0__v0"),
                                                                     (ds.records[1].id, 0, "0__v1")],
                                          annotated={f"{ds.records[0].id}__e0"})
    out = tmp_path / "out"
    result = dp("--json", "export", "-d", root, "-f", "rstpreid", "-o", out, "--edits", edits, "--link")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["generated_records"], payload["skipped_without_annotation"], payload["new_persons"]) == (1, 1, 1)
    assert "1 edits had no annotation" in result.stderr
    assert export_kit.irra_contract(out, "rstpreid")["train"] == {0, 1, 2, 3}


def test_toml_sets_dataset_relative_to_its_folder_and_flags_win(dp, tbps, tmp_path):
    root = tbps("icfg-pedes", name="proj/data/icfg")
    (tmp_path / "proj" / "dp.toml").write_text('[data]\ndataset = "data/icfg"\n\n[export]\nformat = "native"\n'
                                               'out = "exported"\n')
    result = dp("--config", tmp_path / "proj" / "dp.toml", "export")
    assert result.exit_code == 0, result.output
    assert load_dataset(tmp_path / "proj" / "exported").records == load_dataset(root).records
    result = dp("--config", tmp_path / "proj" / "dp.toml", "export", "-f", "icfg-pedes", "-o", "flagged")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cwd" / "flagged" / "ICFG-PEDES.json").is_file()  # flag paths resolve against the cwd


def test_dataset_from_environment(dp, tbps, tmp_path):
    root = tbps("cuhk-pedes")
    result = dp("-q", "export", "-o", tmp_path / "o", env={"DP_DATASET": str(root)})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # --quiet
    assert (tmp_path / "o" / "reid_raw.json").is_file()


def test_toy_world_exported_as_cuhk_pedes_passes_irra_contract(dp, tmp_path, export_kit):
    """The issue's acceptance: `dp toy` then `dp export --format cuhk-pedes` -> IRRA's reader accepts it."""
    toy = dp("-q", "toy", "--out", tmp_path / "toy", "--persons", 6, "--height", 32, "--width", 16)
    assert toy.exit_code == 0, toy.output
    result = dp("--json", "export", "-d", tmp_path / "toy", "-f", "cuhk-pedes", "-o", tmp_path / "cuhk")
    assert result.exit_code == 0, result.output
    ids = export_kit.irra_contract(tmp_path / "cuhk", "cuhk-pedes")
    payload = json.loads(result.stdout)
    assert len(ids["train"]) == payload["splits"]["train"]["persons"] > 0
    assert ids["test"] and not ids["test"] & {i + 1 for i in ids["train"]}  # test ids stay distinct on disk


def test_label_set_native_header_wins_over_data_default(dp, tmp_path, kit):
    root = tmp_path / "lip"
    kit.write_native(root, kit.native_rows(), header={"format": "dp-native", "version": 1, "label_set": "lip",
                                                      "name": "lipset"})
    result = dp("-q", "export", "-d", root, "-f", "native", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["label_set"] == "lip"
    cuhk = kit.write_tbps(tmp_path / "c", "cuhk-pedes", kit.sample_entries("cuhk-pedes")).parent
    (tmp_path / "dp.toml").write_text('[data]\nlabel_set = "lip"\n')
    result = dp("-q", "--config", tmp_path / "dp.toml", "export", "-d", cuhk, "-f", "native", "-o", tmp_path / "o2")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o2" / "dataset.json").read_text())["label_set"] == "lip"


def test_export_leaves_out_failed_edits_counts_them_and_keeps_them_on_request(dp, tbps, tmp_path, export_kit):
    root = tbps("cuhk-pedes")
    ds = load_dataset(root)
    edits, _ = export_kit.write_edits(tmp_path / "e", root, [(ds.records[0].id, 0, "0__v0"),
                                                             (ds.records[2].id, 1, "1__v0")], failed={0})
    result = dp("--json", "export", "-d", root, "-o", tmp_path / "o1", "--edits", edits)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["generated_records"], payload["skipped_failed_verification"]) == (1, 1)
    assert "failed verification" in result.stderr
    result = dp("--json", "export", "-d", root, "-o", tmp_path / "o2", "--edits", edits, "--include-failed-edits")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["generated_records"] == 2


def test_bad_values_of_both_tables_are_reported_together(dp, tmp_path):
    (tmp_path / "dp.toml").write_text('[data]\nformat = "bogus"\n\n[export]\nformat = "bogus"\n')
    result = dp("--config", tmp_path / "dp.toml", "export", "--out", tmp_path / "o")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[data] format" in lines[0] and "[export] format" in lines[0], result.stderr


def test_a_broken_project_file_is_reported_once(dp, tmp_path):
    (tmp_path / "dp.toml").write_text('[data\n')
    result = dp("--config", tmp_path / "dp.toml", "export", "--out", tmp_path / "o")
    assert result.exit_code == 1, result.output
    assert result.stderr.count("invalid TOML") == 1, result.stderr
