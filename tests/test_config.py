"""Settings: TOML in, validated dataclasses out, JSON round trips, the shipped presets."""

import pytest

from vaelab.core.config import (
    RunConfig,
    StudyConfig,
    from_dict,
    load_preset,
    load_toml,
    preset_names,
    to_dict,
)
from vaelab.core.errors import VaelabError


def test_json_round_trip_keeps_every_field():
    cfg = load_preset("quick")
    assert from_dict(StudyConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("name", preset_names())
def test_shipped_presets_load(name):
    cfg = load_preset(name)
    assert set(cfg.models) <= {"ae", "vae", "cvae", "m2"}
    assert cfg.name == name


def test_paper_preset_is_the_article():
    cfg = load_preset("paper")
    assert cfg.latents == (2, 4, 16, 64) and cfg.models == ("ae", "vae", "cvae")
    t = cfg.train
    assert (t.epochs, t.batch_size, t.lr, t.kl_weight, t.n_samples) == (1000, 100, 1e-3, 0.1, 5)
    assert cfg.data.test_size == 2000 and cfg.data.n_labelled == 30000
    assert cfg.experiments.kmeans_runs == 50 and cfg.experiments.iwae_samples >= 1000


def test_user_toml_overrides_and_validation(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nlatents = [2, 8]\n[train]\nepochs = 3\nlr = 1\n')
    cfg = load_toml(path)
    assert cfg.latents == (2, 8) and cfg.train.epochs == 3 and cfg.train.lr == 1.0
    assert load_preset(str(path)) == cfg
    for text, message in (
        ("[train]\nepochz = 3\n", "unknown setting train.'epochz'"),
        ("[train]\nepochs = 0\n", "epochs must be >= 1"),
        ("[train]\nepochs = true\n", "must be int"),
        ("models = ['gan']\n", "unknown model"),
        ("latents = 4\n", "must be a list"),
        ("[train\n", "cannot read config"),
    ):
        path.write_text(text)
        with pytest.raises(VaelabError, match=message.replace("(", r"\(")):
            load_toml(path)
    with pytest.raises(VaelabError, match="not found"):
        load_toml(tmp_path / "absent.toml")


def test_run_config_from_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nkind = "cvae"\nlatent = 2\n[data]\ntest_size = 100\n')
    cfg = load_toml(path, RunConfig)
    assert cfg.model.kind == "cvae" and cfg.data.test_size == 100 and cfg.train.epochs == 1000
