"""Bad inputs through the CLI: exit code, one-line message naming the problem, no traceback, and the
existing output (a previous export, replaced only with --overwrite) and the inputs left untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


def _native(root: Path) -> Path:
    return root / "annotations.jsonl"


def _rewrite_json(path: Path, index: int, **change) -> None:
    rows = json.loads(path.read_text())
    for key, value in change.items():
        if value is None:
            del rows[index][key]
        else:
            rows[index][key] = value
    path.write_text(json.dumps(rows))


def _append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


# Each case: (name, setup(ctx) -> extra CLI args or None, expected exit code, message regex).
def broken_toml(c):
    c.toml.write_text("[export\nformat = 'native'\n")
    return ["--config", c.toml]


def unknown_key(c):
    c.toml.write_text('[export]\nformt = "native"\n')
    return ["--config", c.toml]


def unknown_table(c):
    c.toml.write_text('[exprot]\nformat = "native"\n')
    return ["--config", c.toml]


def wrong_type(c):
    c.toml.write_text('[export]\nlink = "sometimes"\n[data]\nlabel_set = "coco"\n')
    return ["--config", c.toml]


def bad_config_path(c):
    return ["--config", c.tmp / "nope.toml"]


def missing_dataset(c):
    c.dataset = c.tmp / "no-such-dataset"


def malformed_json_line(c):
    c.dataset = c.tbps("native", name="nat")
    _append(_native(c.dataset), '{"id": "x", "image": \n')


def malformed_json_file(c):
    (c.dataset / "reid_raw.json").write_text('[{"split": "train", "captions": ["a"],')


def path_traversal(c):
    _rewrite_json(c.dataset / "reid_raw.json", 2, file_path="../../outside.jpg")


def duplicate_id(c):
    _rewrite_json(c.dataset / "reid_raw.json", 1, file_path="train/0000/0000_0.jpg")


def empty_dataset(c):
    (c.dataset / "reid_raw.json").write_text("[]")


def unknown_format(c):
    return ["--format", "market1501"]


def unknown_input_format(c):
    return ["--input-format", "coco"]


def empty_caption(c):
    _rewrite_json(c.dataset / "reid_raw.json", 3, captions=["   "])


def unknown_split(c):
    _rewrite_json(c.dataset / "reid_raw.json", 0, split="gallery")


def missing_field(c):
    _rewrite_json(c.dataset / "reid_raw.json", 4, id=None)


def output_not_empty(c):
    c.overwrite = False


def edits_without_matching_dataset(c):
    other = c.tbps("rstpreid", name="other")
    edits, _ = c.export_kit.write_edits(c.tmp / "edits", other, [("train__0000__0000_0x", 0, "0__v0")])
    return ["--edits", edits]


def malformed_edits_line(c):
    edits, _ = c.export_kit.write_edits(c.tmp / "edits", c.dataset, [("train__0000__0000_0", 0, "0__v0")])
    _append(edits, "not json\n")
    return ["--edits", edits]


def missing_edited_image(c):
    edits, _ = c.export_kit.write_edits(c.tmp / "edits", c.dataset, [("train__0000__0000_0", 0, "0__v0")])
    (c.tmp / "edits" / "images" / "train__0000__0000_0__e0.png").unlink()
    return ["--edits", edits]


def empty_description(c):
    edits, notes = c.export_kit.write_edits(c.tmp / "edits", c.dataset, [("train__0000__0000_0", 0, "0__v0")])
    notes.write_text(json.dumps({"id": "train__0000__0000_0__e0", "description": " "}) + "\n")
    return ["--edits", edits]


def missing_annotations(c):
    edits, notes = c.export_kit.write_edits(c.tmp / "edits", c.dataset, [("train__0000__0000_0", 0, "0__v0")])
    notes.unlink()
    return ["--edits", edits]


def missing_image(c):
    (c.dataset / "imgs" / "test" / "0003" / "0003_1.jpg").unlink()


def icfg_without_val(c):
    return ["--format", "icfg-pedes"]


def annotations_without_edits(c):
    return ["--annotations", c.tmp / "a.jsonl"]


def out_is_the_dataset(c):
    c.out = c.dataset


def out_inside_the_dataset(c):
    c.out = c.dataset / "export"


def out_is_a_folder_dp_did_not_make(c):
    c.out = c.tmp / "thesis"
    c.out.mkdir()
    (c.out / "thesis.tex").write_text("years of work")


def image_links_outside(c):
    (c.tmp / "secret.txt").write_text("not part of the dataset")
    image = c.dataset / "imgs" / "train" / "0000" / "0000_0.jpg"
    image.unlink()
    image.symlink_to(c.tmp / "secret.txt")


def image_links_outside_with_link(c):
    image_links_outside(c)
    return ["--link"]


CASES = [
    (broken_toml, 1, r"dp.toml: invalid TOML"),
    (unknown_key, 1, r"dp.toml: .*formt: unknown key \(did you mean 'format'\?\)"),
    (unknown_table, 1, r"dp.toml: invalid config: .*unknown table \(did you mean 'export'\?\)$"),
    (wrong_type, 1, r"label_set: unknown label set; use one of atr, lip \(got 'coco'\); .*link: .*'sometimes'"),
    (bad_config_path, 1, r"nope.toml: config file not found"),
    (missing_dataset, 1, r"no-such-dataset: dataset not found"),
    (malformed_json_line, 1, r"annotations.jsonl:11: malformed JSON"),
    (malformed_json_file, 1, r"reid_raw.json: malformed JSON at line 1"),
    (path_traversal, 1, r"record 2 \(file_path\): path '../../outside.jpg' escapes the dataset folder"),
    (duplicate_id, 1, r"record 'train__0000__0000_0': duplicate id"),
    (empty_dataset, 1, r"reid_raw.json: dataset is empty"),
    (unknown_format, 2, r"format: unknown format; use one of native, cuhk-pedes.*market1501"),
    (unknown_input_format, 2, r"format: unknown format; use auto or one of.*coco"),
    (empty_caption, 1, r"record 3 \(file_path 'train/0001/0001_1.jpg'\): empty caption"),
    (unknown_split, 1, r"record 0 \(file_path 'train/0000/0000_0.jpg'\): unknown split 'gallery'"),
    (missing_field, 1, r"record 4: missing field\(s\) id"),
    (output_not_empty, 1, r"previous: folder is not empty \(choose another --out, or pass --overwrite\)"),
    (edits_without_matching_dataset, 1, r"edits.jsonl:1: source_id 'train__0000__0000_0x' is not in dataset"),
    (malformed_edits_line, 1, r"edits.jsonl:2: malformed JSON"),
    (missing_edited_image, 1, r"edits.jsonl:1: edited image .*__e0.png not found"),
    (empty_description, 1, r"annotations.jsonl:1: empty description for id 'train__0000__0000_0__e0'"),
    (missing_annotations, 1, r"annotations.jsonl: annotations not found \(run `dp annotate`"),
    (missing_image, 1, r"record 'test__0003__0003_1': file .*0003_1.jpg not found"),
    (icfg_without_val, 1, r"split 'val' cannot be written as icfg-pedes"),
    (annotations_without_edits, 2, r"--annotations needs --edits"),
    (out_is_the_dataset, 2, r"--out \S+/cuhk is the same as --dataset \S+/cuhk"),
    (out_inside_the_dataset, 2, r"--out \S+/cuhk/export is inside --dataset \S+/cuhk"),
    (out_is_a_folder_dp_did_not_make, 1, r"thesis: folder holds files dp did not write \(thesis.tex; no export.json\)"),
    (image_links_outside, 1, r"record 'train__0000__0000_0' image: \S+/0000_0.jpg leads to \S+/secret.txt, outside "),
    (image_links_outside_with_link, 1, r"record 'train__0000__0000_0' image: .* leads to \S+/secret.txt, outside "),
]


class Ctx:
    def __init__(self, tmp: Path, tbps, export_kit):
        self.tmp, self.tbps, self.export_kit = tmp, tbps, export_kit
        self.dataset = tbps("cuhk-pedes", name="cuhk")
        self.toml = tmp / "dp.toml"
        self.out = tmp / "previous"
        self.overwrite = True


@pytest.mark.parametrize("setup, code, message", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(dp, tmp_path, tbps, export_kit, kit, setup, code, message):
    c = Ctx(tmp_path, tbps, export_kit)
    ok = dp("export", "-d", c.dataset, "-o", c.out, "-f", "cuhk-pedes")  # a previous good export
    assert ok.exit_code == 0, ok.output
    extra = setup(c) or []
    config = extra[:2] if extra[:1] == ["--config"] else []
    args = [*config, "export", "-d", c.dataset, "-o", c.out, *extra[len(config):]]
    if c.overwrite:
        args.append("--overwrite")
    before = {p: kit.tree_digest(p) for p in (c.out, c.dataset)}
    result = dp(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert result.stdout == ""
    assert {p: kit.tree_digest(p) for p in (c.out, c.dataset)} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".previous")]  # no staging left behind


def test_unknown_hub_id_offline_is_one_line_without_library_warnings(tmp_path, subprocess_env):
    import subprocess
    import sys

    env = subprocess_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    world = tmp_path / "world"
    run = [sys.executable, "-m", "dp_cli"]
    assert subprocess.run([*run, "-q", "toy", "--out", str(world), "--persons", "2", "--height", "64",
                           "--width", "32"], env=env, capture_output=True).returncode == 0
    res = subprocess.run([*run, "train", "--pretrained-model", "someone/no-such-model", "--image-encoder",
                          "someone/no-such-encoder", "--dataset", str(world), "--output-dir", str(tmp_path / "run")],
                         env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert "someone/no-such-model" in lines[0] and "HF_HUB_OFFLINE" in lines[0] and "Warning" not in res.stderr


@pytest.mark.parametrize("args, needle", [
    (["train", "--bogus"], "error: No such option: --bogus (try 'dp train -h')"),
    (["edit", "--steps", "abc"], "error: Invalid value for '--steps'"),
    (["no-such-command"], "error: No such command 'no-such-command'."),
])
def test_usage_errors_are_one_line_with_exit_code_2(args, needle):
    from typer.testing import CliRunner

    from dp_cli.app import app

    result = CliRunner().invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(needle), result.output


def test_no_arguments_shows_the_help():
    from typer.testing import CliRunner

    from dp_cli.app import app

    result = CliRunner().invoke(app, [])
    assert "Usage: dp" in result.output and "annotate" in result.output and "error:" not in result.output


def test_quiet_and_verbose_together_are_a_usage_error(dp, tmp_path):
    result = dp("-q", "-v", "toy", "--out", tmp_path / "w", "--persons", "1")
    assert result.exit_code == 2 and "--quiet and --verbose contradict each other" in result.stderr
    assert not (tmp_path / "w").exists()


def test_a_verbose_traceback_keeps_its_brackets(dp):
    """The traceback is text: '[edit] types' was eaten as rich markup (only the error line kept it)."""
    result = dp("-v", "edit", "--types", "hats")
    assert result.exit_code == 2 and "Traceback" in result.stderr
    assert result.stderr.count("[edit] types: unknown attribute type(s)") == 2


@pytest.mark.parametrize("command, says", [("train", "--resume-from-checkpoint latest"),
                                           ("export", "nothing was written"), ("toy", "nothing was written"),
                                           ("edit", "rerun the same command to resume")])
def test_ctrl_c_says_what_this_command_kept(capsys, command, says):
    import typer

    from dp_cli.cli_common import dp_command

    def interrupted():
        raise KeyboardInterrupt

    interrupted.__module__ = f"dp_cli.commands.{command}"
    with pytest.raises(typer.Exit) as info:
        dp_command(interrupted)()
    err = capsys.readouterr().err
    assert info.value.exit_code == 130 and says in " ".join(err.split()) and len(err.strip().splitlines()) == 1


def test_sigterm_ends_a_command_like_ctrl_c_with_143(capsys):
    import os
    import signal

    import typer

    from dp_cli.cli_common import dp_command

    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have ended the command")

    terminated.__module__ = "dp_cli.commands.train"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(typer.Exit) as info:
        dp_command(terminated)()
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.exit_code == 143 and err.startswith("error: terminated (SIGTERM); the checkpoints")
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the command's only


def test_an_error_raised_while_sigterm_is_handled_still_ends_as_sigterm(capsys):
    """PyTorch's DataLoader raises 'worker killed by signal' when the same SIGTERM reached its workers."""
    import typer

    from dp_cli.cli_common import Terminated, dp_command

    def terminated():
        try:
            raise Terminated()
        except KeyboardInterrupt:
            raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    terminated.__module__ = "dp_cli.commands.edit"
    with pytest.raises(typer.Exit) as info:
        dp_command(terminated)()
    err = capsys.readouterr().err
    assert info.value.exit_code == 143 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_other_errors_still_propagate(capsys):
    from dp_cli.cli_common import dp_command

    def broken():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        dp_command(broken)()


def test_ctrl_c_in_segment_import_says_its_folder_went(capsys):
    import typer

    from dp_cli.cli_common import dp_command

    def import_():
        raise KeyboardInterrupt

    import_.__module__ = "dp_cli.commands.segment"
    with pytest.raises(typer.Exit):
        dp_command(import_)()
    assert "was removed (an import redoes every map)" in " ".join(capsys.readouterr().err.split())


def test_a_sigterm_handler_python_cannot_restore_falls_back_to_the_default(monkeypatch):
    import signal

    from dp_cli import cli_common

    real, installed = signal.signal, []

    def from_c(sig, handler):  # as if the handler before was installed from C: Python reports None
        installed.append(handler)
        previous = real(sig, handler)
        return None if len(installed) == 1 else previous

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli_common.signal, "signal", from_c)
    with cli_common.terminate_as_interrupt():
        pass
    real(signal.SIGTERM, before)
    assert installed[-1] is signal.SIG_DFL
