"""Run folders keep their names across revisions: a study finds the models it trained before.

The names below were computed by vaelab before its subpackages, the sweeps of C and k, binarised
pixels and M2 existed; every setting added since must leave them as they were at its default."""

from __future__ import annotations

import dataclasses

import pytest

from vaelab.core.config import load_preset
from vaelab.training.identity import run_name

STORED = {
    "tiny": [
        "ae-z2-s0-f179f26fc5",
        "vae-z2-s0-1a1a920489",
        "cvae-z2-s0-58ddb4a197",
        "ae-z4-s0-9bd97f9a9a",
        "vae-z4-s0-f1488fc12c",
        "cvae-z4-s0-c54b094f2c",
        "ae-z16-s0-c694132d9b",
        "vae-z16-s0-d57b49b446",
        "cvae-z16-s0-fa1301e71b",
        "ae-z64-s0-ae4e99ffab",
        "vae-z64-s0-324ffd6f43",
        "cvae-z64-s0-488ecf9c7c",
    ],
    "quick": [
        "ae-z2-s0-f25e17948b",
        "vae-z2-s0-f2c9b4359b",
        "cvae-z2-s0-4b2bf647d2",
        "ae-z4-s0-92e070cdf7",
        "vae-z4-s0-b86554ec4e",
        "cvae-z4-s0-9e3d92a3c7",
        "ae-z16-s0-680cd0a26f",
        "vae-z16-s0-61668d5529",
        "cvae-z16-s0-3576de5acb",
        "ae-z64-s0-e9538526d4",
        "vae-z64-s0-e396b11abd",
        "cvae-z64-s0-7061e9f23a",
        "ae-z2-s1-33ef3afd9d",
        "vae-z2-s1-1ce79d798b",
        "cvae-z2-s1-cc6b0f4297",
        "ae-z4-s1-bc9ab76790",
        "vae-z4-s1-c2595714f3",
        "cvae-z4-s1-67e0cb9aa1",
        "ae-z16-s1-0c2c91d79d",
        "vae-z16-s1-61039a70e0",
        "cvae-z16-s1-7eb53e9e70",
        "ae-z64-s1-7b8d38fa4a",
        "vae-z64-s1-c0bcf08fdb",
        "cvae-z64-s1-c73b129718",
        "ae-z2-s2-a4261c3880",
        "vae-z2-s2-38dc131e76",
        "cvae-z2-s2-15ae4799e0",
        "ae-z4-s2-0424b2f3db",
        "vae-z4-s2-d7b1e2b9fe",
        "cvae-z4-s2-25c0a5548a",
        "ae-z16-s2-cd69df76a2",
        "vae-z16-s2-b70185cd38",
        "cvae-z16-s2-d8e9ec6b18",
        "ae-z64-s2-c68eed86d6",
        "vae-z64-s2-da550c29c0",
        "cvae-z64-s2-4ad873bc0c",
    ],
}


@pytest.mark.parametrize("preset", sorted(STORED))
def test_the_presets_run_folders_keep_their_names(preset):
    cfg = load_preset(preset)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, sha256="0" * 64))
    names = [
        run_name(cfg.run_config(kind, z, seed))
        for seed in cfg.seeds
        for z in cfg.latents
        for kind in cfg.models
    ]
    assert names == STORED[preset]
