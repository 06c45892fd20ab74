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


def test_article_preset_is_the_notebooks_regime():
    cfg = load_preset("article")
    assert cfg.latents == (2, 4, 16, 64) and cfg.models == ("ae", "vae", "cvae")
    t = cfg.train
    assert t.total_steps(60000) == 1000 and t.epochs is None  # 1000 minibatches, not epochs
    assert (t.batch_size, t.lr, t.kl_weight, t.n_samples) == (100, 1e-3, 0.1, 5)
    assert (t.optimizer, t.ae_loss, cfg.ae_losses) == ("chainer-adam", "mse", ("mse", "bernoulli"))
    assert cfg.seeds == tuple(range(10)) and cfg.eval_images == ("test", "train")
    assert cfg.data.test_size == 2000 and cfg.data.n_labelled == 30000
    e = cfg.experiments
    assert (e.kmeans_runs, e.kmeans_n_init, e.walk_steps) == (50, 10, 21)
    assert e.article_walks == ((3, 1), (7, 15))
    converged = load_preset(cfg.converged_study)
    assert converged.seeds == cfg.seeds and converged.train.total_steps(60000) == 12000
    same = {"steps", "epochs", "checkpoint_every", "eval_every"}
    assert {k: v for k, v in converged.train.__dict__.items() if k not in same} == {
        k: v for k, v in t.__dict__.items() if k not in same
    }
    assert converged.experiments == e and converged.data == cfg.data
    assert load_preset("converged-1000").train.epochs == 1000


def test_training_length_is_steps_or_epochs_never_both(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nsteps = 10\nepochs = 2\n")
    with pytest.raises(VaelabError, match="give train.steps or train.epochs, not both"):
        load_toml(path, RunConfig)
    for text, message in (
        ("[train]\nsteps = 0\n", "train.steps must be >= 1"),
        ('[train]\nae_loss = "l2"\n', "train.ae_loss 'l2' is not one of bernoulli, mse"),
        ('[train]\noptimizer = "sgd"\n', "train.optimizer 'sgd' is not one of"),
    ):
        path.write_text(text)
        with pytest.raises(VaelabError, match=message):
            load_toml(path, RunConfig)
    t = load_toml(_write(path, "[train]\nepochs = 3\n"), RunConfig).train
    assert (t.steps_per_epoch(60000), t.total_steps(60000), t.total_steps(250)) == (600, 1800, 9)


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('eval_images = ["test", "test"]', "eval_images must be distinct names"),
        ('eval_images = ["valid"]', "eval_images must be distinct names among test, train"),
        ('ae_losses = ["bernoulli", "l1"]', "ae_losses must be distinct names"),
        ('ae_losses = ["mse", "bernoulli"]', "ae_losses must start with train.ae_loss"),
        ('models = ["vae"]\nae_losses = ["bernoulli"]', "ae_losses needs ae among the models"),
        ("[experiments]\nkmeans_n_init = 0", "kmeans_n_init must be >= 1"),
        ("[experiments]\narticle_walks = [[3, -1]]", "article_walks must be pairs"),
    ],
)
def test_bad_study_settings_of_the_articles_regime_are_one_line(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text + "\n")
    with pytest.raises(VaelabError, match=message):
        load_toml(path)


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
    assert cfg.model.kind == "cvae" and cfg.data.test_size == 100
    assert cfg.train.epochs is None and cfg.train.total_steps(60000) == 1000  # the article's


def test_an_unknown_model_kind_is_one_line_where_settings_are_loaded(tmp_path):
    from vaelab import config

    path = tmp_path / "mine.toml"
    path.write_text("models = ['gan']\n")
    with pytest.raises(VaelabError, match="unknown model 'gan': choose one of ae, vae"):
        config.load_toml(path)
    path.write_text('[model]\nkind = "gan"\n')
    with pytest.raises(VaelabError, match="unknown model 'gan'"):
        config.load_toml(path, RunConfig)
