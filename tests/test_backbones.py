"""The registry: every family users expect, blocks that really cut the network, honest weight status."""

import pytest
import torch

from tl_core.models import backbones
from tl_core.models.backbones import BackboneError, WeightsUnavailable

VISION = ["resnet18", "resnet50", "vgg11_bn", "inception_v3", "densenet121", "efficientnet_b0", "efficientnet_lite0",
          "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "vit_b_16", "convnext_tiny"]
TEXT = ["all-MiniLM-L6-v2", "bert-base-uncased", "distilbert-base-uncased", "roberta-base", "gpt2", "t5-small",
        "xlnet-base-cased"]


def test_registry_covers_every_family():
    assert set(VISION + TEXT) <= set(backbones.REGISTRY)
    assert backbones.list_names("vision") == [n for n in backbones.REGISTRY if n in VISION]


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0", "all-MiniLM-L6-v2"])
def test_bundled_weights_load_offline(name):
    assert backbones.weights_status(name) == "bundled"


@pytest.mark.parametrize("name", VISION + TEXT)
def test_describe_counts_blocks_and_params(name):
    info = backbones.describe(name)
    assert info["family"] == ("vision" if name in VISION else "text")
    assert len(info["blocks"]) == len(info["block_params"]) >= 4
    assert all(n > 0 for n in info["block_params"])
    assert info["params"] == sum(info["block_params"])
    assert info["weights"] in ("bundled", "cached", "download")


def test_text_blocks_are_embeddings_then_layers():
    assert backbones.describe("bert-base-uncased")["blocks"] == ["embeddings"] + [f"layer{i}" for i in range(12)]
    assert backbones.describe("all-MiniLM-L6-v2")["params"] == pytest.approx(22.57e6, rel=0.01)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(BackboneError, match="unknown backbone 'resnet9000'"):
        backbones.get_spec("resnet9000")


SIZES = {"inception_v3": 80, "vit_b_16": 224}


@pytest.mark.parametrize("name", VISION)
def test_blocks_then_neck_then_head_equal_the_original_forward(name):
    """The cut is faithful: running the blocks one by one gives the library's own forward, so caching is exact."""
    size = SIZES.get(name, 32)
    model = backbones.build(name, n_classes=3, pretrained=False, image_size=size).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours = model(x)
        original = model.net(x)
        for depth in (1, model.n_blocks // 2, model.n_blocks):
            assert torch.allclose(model.suffix(model.boundary(x, depth), depth), original, atol=1e-4)
    assert ours.shape == (2, 3)
    assert torch.allclose(ours, original, atol=1e-4)
    trainable, total = model.count_params()
    assert trainable == total == sum(model.block_param_counts()) + 3 * model.feature_dim + 3


@pytest.mark.parametrize("name", TEXT)
def test_tiny_text_models_build_offline_and_freeze_by_block(name):
    model = backbones.build(name, n_classes=2, pretrained=name == "all-MiniLM-L6-v2", tiny=True)
    batch = model.tokenizer(["a great film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
    assert logits.shape == (2, 2)
    model.freeze(2)
    counts = model.block_param_counts()
    trainable, total = model.count_params()
    assert trainable == total - counts[0] - counts[1]


def test_same_seed_same_initial_head_in_every_mode():
    a = backbones.build("mobilenet_v2", n_classes=4, seed=7, image_size=32)
    b = backbones.build("mobilenet_v2", n_classes=4, seed=7, pretrained=False, image_size=32)
    assert torch.equal(a.get_head().weight, b.get_head().weight)
    c = backbones.build("mobilenet_v2", n_classes=4, seed=8, image_size=32)
    assert not torch.equal(a.get_head().weight, c.get_head().weight)


def test_bundled_mobilenet_is_really_pretrained():
    from sklearn.datasets import load_sample_image
    from torchvision.models import MobileNet_V2_Weights

    model = backbones.build("mobilenet_v2", n_classes=1000, image_size=224).eval()
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    model.net.load_state_dict(backbones._pretrained_state("mobilenet_v2"))  # put the ImageNet classifier back
    img = torch.from_numpy(load_sample_image("china.jpg").copy()).permute(2, 0, 1)
    with torch.no_grad():
        probs = model.net(weights.transforms()(img)[None]).softmax(1)[0]
    assert weights.meta["categories"][int(probs.argmax())] == "palace"


def test_download_backbone_offline_says_so_quickly(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(backbones, "reachable", lambda url, timeout=3.0: False)  # as on a machine with no network
    for name in ("resnet18", "bert-base-uncased"):
        start = time.perf_counter()
        with pytest.raises(WeightsUnavailable, match=f"{name}: pretrained weights are not on this machine.*random"):
            backbones.build(name, n_classes=2)
        assert time.perf_counter() - start < 10


def test_download_backbone_trains_from_random_init(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = backbones.build("resnet18", n_classes=2, pretrained=False, image_size=32)
    assert model.block_names == ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_image_size_limits_are_explained():
    with pytest.raises(BackboneError, match="vit_b_16 needs --image-size 224"):
        backbones.build("vit_b_16", n_classes=2, pretrained=False, image_size=64)
    with pytest.raises(BackboneError, match="at least 75"):
        backbones.build("inception_v3", n_classes=2, pretrained=False, image_size=32)
