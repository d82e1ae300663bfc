"""The registry: every family users expect, blocks that really cut the network, honest weight status."""

import dataclasses
import socket

import pytest
import torch

from tl_core.models import backbones
from tl_core.models.backbones import BackboneError, WeightsUnavailable

VISION = ["resnet18", "resnet50", "vgg11_bn", "inception_v3", "densenet121", "efficientnet_b0", "efficientnet_lite0",
          "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "vit_b_16", "convnext_tiny"]
TEXT = ["all-MiniLM-L6-v2", "bert-base-uncased", "distilbert-base-uncased", "roberta-base", "gpt2", "t5-small",
        "xlnet-base-cased"]


def test_registry_covers_every_family():
    assert set(VISION + TEXT) <= set(backbones.REGISTRY)
    assert backbones.list_names("vision") == [n for n in backbones.REGISTRY if n in VISION]


#: The first three values of each bundled checkpoint's first weight (the stem convolution; MiniLM's word
#: embeddings), as the published files hold them: a random initialisation or another file gives other numbers.
BUNDLED_FIRST_VALUES = {
    "mobilenet_v2": [0.013185339979827404, -0.004321294371038675, 0.014823135919868946],
    "efficientnet_lite0": [-1.1103360652923584, -1.3087704181671143, -0.010156914591789246],
    "efficientnet_lite1": [0.29808712005615234, -0.3359018862247467, 0.19830206036567688],
    "efficientnet_lite2": [0.0875537171959877, 0.02278793603181839, 0.395465612411499],
    "all-MiniLM-L6-v2": [-0.019989013671875, -0.0034027099609375, -0.014678955078125],
}


@pytest.fixture
def offline(monkeypatch):
    """No connection can be opened, and the weights are read from their files again, not from this process."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbones._pretrained_state.cache_clear()
    yield
    backbones._pretrained_state.cache_clear()


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_bundled_vision_weights_load_offline_and_recognise_a_palace(name, offline):
    """Built offline at its native size, the network is the bundled checkpoint everywhere but its new head; with
    the checkpoint's ImageNet classifier put back it names scikit-learn's photo of a Chinese palace."""
    from sklearn.datasets import load_sample_image
    from torchvision.models import MobileNet_V2_Weights
    from torchvision.transforms import v2 as T

    assert backbones.weights_status(name) == "bundled"
    size = backbones.info(name).default_image_size
    model = backbones.build(name, n_classes=1000, image_size=size).eval()
    first = next(model.net.parameters()).detach().flatten()[:3]
    assert first.tolist() == BUNDLED_FIRST_VALUES[name]
    checkpoint, built = backbones._pretrained_state(name), model.net.state_dict()
    differ = {k for k, v in checkpoint.items() if not torch.equal(v, built[k])}
    assert differ == {f"{prefix}.{p}" for prefix, module in model.net.named_modules() if module is model.get_head()
                      for p in ("weight", "bias")}  # the new head alone
    model.net.load_state_dict(checkpoint)
    photo = torch.from_numpy(load_sample_image("china.jpg").copy()).permute(2, 0, 1)
    photo = T.Compose([T.Resize(size * 256 // 224), T.CenterCrop(size)])(photo)[None]
    with torch.no_grad():
        predicted = int(model.net(model.vision_input(photo)).argmax())
    assert MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"][predicted] == "palace"


def test_bundled_minilm_loads_offline_and_knows_which_sentences_mean_alike(offline):
    """Pretrained sentence features put two film reviews close and a train timetable far; random ones do not."""
    name = "all-MiniLM-L6-v2"
    assert backbones.weights_status(name) == "bundled"
    model = backbones.build(name, n_classes=3).eval()
    first = model.net.embeddings.word_embeddings.weight.detach().flatten()[:3]
    assert first.tolist() == BUNDLED_FIRST_VALUES[name]
    batch = model.tokenizer(["a wonderful, moving film", "a great movie", "the train leaves the station at noon"],
                            padding=True, return_tensors="pt")
    with torch.no_grad():
        features = model.pooled({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}, 0)
    review, alike, unrelated = torch.nn.functional.normalize(features, dim=1)
    assert float(review @ alike) > float(review @ unrelated) + 0.3  # measured: 0.57 against 0.03


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


def test_the_typed_registry_holds_each_bundled_backbones_published_figures():
    """Blocks, sizes, pixel statistics and ImageNet top-1 come from each backbone's own entry (top-1 as published:
    torchvision's weights meta for MobileNetV2's IMAGENET1K_V1, the EfficientNet-Lite release for Lite0-2)."""
    expected = {"mobilenet_v2": (224, 71.878, 0.485), "efficientnet_lite0": (224, 75.1, 0.5),
                "efficientnet_lite1": (240, 76.7, 0.5), "efficientnet_lite2": (260, 77.6, 0.5)}
    for name, (size, top1, mean) in expected.items():
        info = backbones.info(name)
        assert (info.default_image_size, info.imagenet_acc1, info.mean[0]) == (size, top1, mean)
        assert info.n_blocks == 9 and info.params == sum(info.block_params)
        assert backbones.describe(name) == info.to_dict() and backbones.describe(name)["params"] == info.params
    with pytest.raises(dataclasses.FrozenInstanceError):
        backbones.info("mobilenet_v2").weights = "download"
