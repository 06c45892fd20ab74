"""The report's first line and tables on constructed results.json pieces: what ran and how far
to trust it, each training group's time once, bounds on the same images, what a second
judgement changes, and the example walk set against the pooled verdict."""

from vaelab.report.header import how_far, next_run, what_ran
from vaelab.report.regime import at_both, changes_sentence, regime_sentence
from vaelab.report.tables import rate_distortion_rows, training_rows
from vaelab.report.walks import example_note, walk_grid


def results(**extra):
    base = {
        "config": {"name": "article", "models": ["ae", "vae", "cvae"], "latents": [2, 4, 16, 64],
                   "train": {"batch_size": 100, "optimizer": "chainer-adam"},
                   "experiments": {"plot_latent": 2}},
        "seeds": list(range(10)),
        "data": {"test_images": 2000, "test_images_of": 10000},
        "training_length": {"steps": 1000, "steps_per_epoch": 600, "epochs": 1000 / 600},
        "training": {"a": {"still_improving": True}, "b": {"still_improving": True}},
        "claims": [{"number": 1, "verdict": "supported", "provisional": False}],
        "ae_losses": {"headline": "mse", "sets": {"mse": {}, "bernoulli": {}}},
        "evaluation": {"headline": "test", "sets": {}},
    }  # fmt: skip
    return base | extra


def test_the_first_line_says_what_ran_and_how_far_to_trust_it():
    r = results()
    assert what_ran(r) == (
        "12 models (and the AE trained both ways) × 10 seeds, 1000 steps of 100 images "
        "(1.67 epochs), Chainer's Adam, evaluated on 2000 held-out test images"
    )
    assert how_far(r) == (
        "Intervals hold jointly at 95% per claim. Every model still improving: this is the "
        "article's short training."
    )
    r["regimes"] = {"available": False, "converged_study": "/runs/converged"}
    assert next_run(r) == {
        "text": "For the converged models:",
        "link": "",
        "code": "vaelab study --preset converged --out /runs/converged",
    }
    r["regimes"] = {"available": True}
    assert next_run(r)["link"] == "#regime"


def test_one_seed_is_provisional_and_a_levelled_run_says_so():
    r = results(
        seeds=[0],
        claims=[{"number": 1, "verdict": "too few seeds", "provisional": True}],
        training={"a": {"still_improving": False}},
        ae_losses=None,
    )
    r["training_length"] = {"steps": 600, "steps_per_epoch": 600}
    r["config"]["train"]["optimizer"] = "adam"
    assert what_ran(r) == (
        "12 models × 1 seed, 600 steps of 100 images (1 epoch), Adam, "
        "evaluated on 2000 held-out test images"
    )
    assert how_far(r) == (
        "Provisional: one seed measured, so no interval holds its level. Every model levelled off."
    )
    assert next_run(r) is None


def record(kind, z, seed, seconds, **extra):
    return {"kind": kind, "latent": z, "seed": seed, "seconds": seconds, "epochs": 1.0,
            "steps": 1000, "train_loss": 100.0 + z, "test_loss": 101.0 + z,
            "still_improving": True, "reused": False} | extra  # fmt: skip


def test_a_group_that_trained_its_latent_sizes_together_shows_its_time_once():
    training = {}
    for seed, seconds in ((0, 30.0), (1, 34.0)):
        for z in (2, 4):
            training[f"vae{z}{seed}"] = record("vae", z, seed, seconds)
            training[f"ae{z}{seed}"] = record("ae", z, seed, 10.0 + z, ae_loss="mse")
    rows = training_rows(training)
    assert [(r["model"], r["latent"], r["span"]) for r in rows] == [
        ("AE (the article's MSE)", 2, 1),
        ("AE (the article's MSE)", 4, 1),  # its runs report their own times
        ("VAE", 2, 2),
        ("VAE", 4, 0),
    ]
    assert rows[2]["seconds"] == "32.0 ± 2.8"  # the group's time, mean ± sd over seeds
    assert rows[0]["seconds"] == "12.0" and rows[1]["seconds"] == "14.0"
    assert [r["model_span"] for r in rows] == [2, 0, 2, 0]


def test_the_rate_distortion_table_sets_the_bounds_on_the_same_images():
    rows = [
        {"kind": "vae", "z": 2, "kl_weight": 0.1, "n_samples": 5, "seed": s, "rate": 5.0,
         "distortion": 150.0, "elbo": -155.0 - s, "elbo_on_iwae_images": -154.7 - s,
         "iwae": -150.0 - s, "active_units": 2}
        for s in (0, 1)
    ] + [{"kind": "ae", "z": 2, "seed": 0, "nll": 140.0}]  # fmt: skip
    [row] = rate_distortion_rows(rows)
    assert row["elbo_on_iwae_images"] == "−155.2" and row["iwae"] == "−150.5"
    assert (row["model"], row["kl_weight"], row["seeds"]) == ("VAE", "0.1", 2)


def test_what_a_second_judgement_changes_reads_in_the_pages_names():
    changes = {
        "verdicts": [{"claim": 2, "from": "supported", "to": "inconclusive"}],
        "outcomes": [{}, {}, {}],
        "largest_effect_change": {
            "claim": 2, "comparison": "z=4: vae NLL below the AE's", "from": 0.41,
            "to": -1.234, "unit": "nats",
        },
    }  # fmt: skip
    assert changes_sentence(changes, results()) == (
        "claim 2 supported → inconclusive; 3 comparisons change outcome; the effect that "
        "moves most: claim 2, VAE · z=4, +0.4 → −1.2 nats."
    )
    assert changes_sentence({}, results()) == "no verdict and no comparison's outcome changes."


def walk(readings):
    return {"readings": readings}


def test_the_caption_says_when_the_example_walk_goes_against_the_pooled_verdict():
    interpolation = {
        "pairs": 100,
        "walks": {
            "1to0": {"4": walk([1, 1, 0, 0]), "64": walk([1, 8, 6, 0])},  # more at z=64
            "3to7": {"4": walk([3, 8, 9, 7]), "64": walk([3, 7, 7, 7])},
        },
    }
    supported = {"number": 4, "verdict": "supported", "comparisons": []}
    assert example_note(interpolation, supported, 10) == (
        "Other digits passed by the example walks: 1 → 0 passes 0 at z=4, 2 at z=64; 3 → 7 "
        "passes 2 at z=4, 0 at z=64. The 1 → 0 example goes against the pooled verdict "
        "(supported): it is one walk of one seed, and claim 4 weighs 100 walks per pair and z "
        "in each of the 10 seeds."
    )


def test_the_walk_grid_puts_the_articles_walks_first_with_what_it_saw():
    def f(stem):
        return {"file": f"figures/{stem}", "title": stem, "src": "data:", "caption": ""}

    figures = [f("walk_1to0_z4.png"), f("walk_1to0_z4.gif"), f("walk_train3to1_z64.png"),
               f("walk_train3to1_z4.png"), f("walk_train3to1_z4.gif")]  # fmt: skip
    numbers = {"article_walks": {"3to1": {"digits": [1, 0]}}}
    claim = {"comparisons": [{"name": "1 → 0: more other digits passed at z=4 than at z=64",
                              "article": "z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0"}]}  # fmt: skip
    grid = walk_grid(figures, numbers, claim)
    assert [w["heading"] for w in grid] == [
        "The article's walk: training images 3 → 1 (a 1 → a 0)",
        "The first test 1 → the first test 0",
    ]
    assert grid[0]["article"] == "z=4: 1 → 8 → 6 → 0; z=64: 1 → 0"
    assert [r["z"] for r in grid[0]["rows"]] == [4, 64] and grid[0]["rows"][1]["gif"] is None
    assert grid[1]["rows"][0]["gif"]["file"] == "figures/walk_1to0_z4.gif"


def test_each_claim_at_the_articles_length_and_at_convergence_in_one_sentence():
    columns = [
        {"ae_loss": "mse", "short": True},
        {"ae_loss": "bernoulli", "short": True},
        {"ae_loss": "mse", "short": False},
        {"ae_loss": "bernoulli", "short": False},
    ]
    cells = [{"verdict": v} for v in ("supported", "inconclusive", "supported", "inconclusive")]
    assert regime_sentence(columns, cells) == (
        "Holds at both; with the AE on the Bernoulli NLL: inconclusive at both."
    )
    cells = [{"verdict": v} for v in ("supported", "supported", "contradicted", "contradicted")]
    assert regime_sentence(columns, cells) == (
        "Holds only after the article's short training (contradicted at convergence)."
    )
    assert at_both("inconclusive", "supported") == (
        "holds only at convergence (inconclusive after the article's training)"
    )
    assert at_both(None, "supported") == "supported (the other length is missing)"
