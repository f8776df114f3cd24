"""`dp train --load-model` (start from trained DP weights, not a resume) and `--revision` (reaches from_pretrained)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

PARTS = ("unet", "text_encoder", "image_encoder", "fusion")


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """A DP model folder whose trained parts differ from the pretrained ones (as after dp train)."""
    from dp_models.dp_model import DPConfig, DPModel

    model = DPModel.from_pretrained_parts(str(tiny_model / "sd"), str(tiny_model / "clip-vision"),
                                          DPConfig(resolution=(64, 32)))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for part in PARTS:
            for p in getattr(model, part).parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    return model.save_pretrained(tmp_path_factory.mktemp("trained") / "model")


def config(tiny_model, tiny_dataset, out, **over):
    from dp_cli.train.config import TrainConfig

    return TrainConfig(pretrained_model=str(tiny_model / "sd"), image_encoder=str(tiny_model / "clip-vision"),
                       dataset=tiny_dataset, output_dir=out, resolution="64x32", train_batch_size=4,
                       max_train_steps=1, **over)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_model_starts_from_its_weights_at_step_0(trained, tiny_model, tiny_dataset, tmp_path):
    from dp_cli.train import loop
    from dp_models.dp_model import DPModel

    run = loop.setup(config(tiny_model, tiny_dataset, tmp_path / "run", load_model=trained))
    infos = []
    loop.main(run, infos.append)
    given = DPModel.from_pretrained(str(trained))
    pretrained = loop.load_model(config(tiny_model, tiny_dataset, tmp_path / "other"))
    for part in PARTS:
        assert same(getattr(run.model, part), getattr(given, part)), part
        assert not same(getattr(run.model, part), getattr(pretrained, part)), part
    assert same(run.model.vae, pretrained.vae)  # the frozen parts stay the pretrained model's
    assert run.state.global_step == 0 and run.resumed_from is None and not run.optimizer.state
    assert any("starting from the weights of" in m for m in infos)


def test_load_model_on_the_command_line(dp, train_args, trained, tmp_path, losses_of):
    out = tmp_path / "run"
    result = dp("--json", "train", *train_args(out, max_train_steps=2, load_model=trained))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["resumed_from"] is None and sorted(losses_of(out)) == [1, 2]
    seed = dp("train", *train_args(tmp_path / "seed", max_train_steps=1), "--load_model", trained)
    assert seed.exit_code == 0, seed.stderr  # the seed's spelling


def test_incomplete_or_missing_load_model_folder_is_one_line(dp, train_args, trained, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    shutil.rmtree(broken / "fusion")
    for folder, needle in ((broken, "missing fusion"), (tmp_path / "nope", "no such folder")):
        result = dp("train", *train_args(tmp_path / "run", load_model=folder))
        err = result.stderr.strip()
        assert result.exit_code == 1 and len(err.splitlines()) == 1 and needle in err, result.output
        assert "Traceback" not in result.output and not (tmp_path / "run" / "model").exists()


def test_revisions_reach_every_from_pretrained(tiny_model, tiny_dataset, tmp_path, monkeypatch):
    """Local folders ignore the revision, so the loads succeed; each hub load is asked for its own revision."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

    from dp_cli.train import loop

    calls = []

    def spy(cls):
        original = cls.from_pretrained.__func__

        def from_pretrained(klass, *args, **kwargs):
            calls.append((cls.__name__, kwargs.get("revision")))
            return original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(from_pretrained))

    sd = (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer, DDPMScheduler)
    for cls in (*sd, CLIPVisionModelWithProjection):
        spy(cls)
    model = loop.load_model(config(tiny_model, tiny_dataset, tmp_path, revision="v1.0",
                                   image_encoder_revision="abc123"))
    assert model.unet is not None
    assert sorted(calls) == sorted([(c.__name__, "v1.0") for c in sd] + [("CLIPVisionModelWithProjection", "abc123")])


def test_revision_flags_and_toml(dp, train_args, tmp_path, monkeypatch):
    import dp_cli.commands.train as train_command

    seen = []
    monkeypatch.setattr(train_command, "_run", seen.append)
    (tmp_path / "dp.toml").write_text('[train]\nrevision = "main"\nimage_encoder_revision = "refs/pr/1"\n')
    assert dp("train", *train_args()).exit_code == 0
    assert (seen[-1].revision, seen[-1].image_encoder_revision) == ("main", "refs/pr/1")
    assert dp("train", *train_args(), "--revision", "fp16", "--image-encoder-revision", "v2").exit_code == 0
    assert (seen[-1].revision, seen[-1].image_encoder_revision) == ("fp16", "v2")
