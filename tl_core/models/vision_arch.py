"""How each vision architecture is cut into the blocks of the freeze-depth slider.

One function per family returns (blocks, neck, head_path). Blocks follow the
architecture's own stages (ResNet: stem, layer1..4; MobileNetV2: stem and its
seven bottleneck stages), so "freeze 3 blocks" means what the papers mean.
Block forwards are nn.Sequential views over the original submodules; nothing
is copied, and running blocks -> neck -> head equals the original forward in
eval mode (tests check it).
"""

from __future__ import annotations

import torch
from torch import nn

Cut = tuple[list, nn.Module, str]


class _Call(nn.Module):
    """Wraps a function of the original model (e.g. Inception's input transform) as a module."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def forward(self, x):
        return self._fn(x)


def _seq(net: nn.Module, paths: list[str], extra: list[nn.Module] = ()) -> nn.Sequential:
    return nn.Sequential(*[net.get_submodule(p) for p in paths], *extra)


def _block(net, name, paths, extra=(), prefixes=None):
    from tl_core.models.model import Block

    return Block(name=name, prefixes=prefixes if prefixes is not None else list(paths), forward=_seq(net, paths, extra))


def _pool_flatten() -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def resnet(net) -> Cut:
    blocks = [_block(net, "stem", ["conv1", "bn1", "relu", "maxpool"])]
    blocks += [_block(net, f"layer{i}", [f"layer{i}"]) for i in range(1, 5)]
    return blocks, _pool_flatten(), "fc"


def _split_features(net, names: list[str], groups: list[list[int]]):
    return [_block(net, name, [f"features.{i}" for i in idx]) for name, idx in zip(names, groups)]


def mobilenet_v2(net) -> Cut:
    groups = [[0], [1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13], [14, 15, 16], [17], [18]]
    names = ["stem"] + [f"stage{i}" for i in range(1, 8)] + ["head_conv"]
    return _split_features(net, names, groups), _pool_flatten(), "classifier.1"


def mobilenet_v3(net) -> Cut:
    n = len(net.features)
    names = ["stem"] + [f"bneck{i}" for i in range(1, n - 1)] + ["head_conv"]
    blocks = _split_features(net, names, [[i] for i in range(n)])
    blocks.append(_block(net, "fc", ["avgpool", "classifier.0", "classifier.1", "classifier.2"],
                         prefixes=["classifier.0"]))
    # avgpool must run before the flatten that the pretrained fc layer expects
    blocks[-1].forward = nn.Sequential(net.avgpool, nn.Flatten(1), net.classifier[0], net.classifier[1], net.classifier[2])
    return blocks, nn.Identity(), "classifier.3"


def efficientnet(net) -> Cut:
    n = len(net.features)
    names = ["stem"] + [f"stage{i}" for i in range(1, n - 1)] + ["head_conv"]
    return _split_features(net, names, [[i] for i in range(n)]), _pool_flatten(), "classifier.1"


def vgg(net) -> Cut:
    blocks, start = [], 0
    for i, layer in enumerate(net.features):
        if isinstance(layer, nn.MaxPool2d):
            blocks.append(_block(net, f"conv{len(blocks) + 1}", [f"features.{j}" for j in range(start, i + 1)]))
            start = i + 1
    fc6 = _block(net, "fc6", ["classifier.0", "classifier.1", "classifier.2"])
    fc6.forward = nn.Sequential(net.avgpool, nn.Flatten(1), *net.classifier[:3])
    fc7 = _block(net, "fc7", ["classifier.3", "classifier.4", "classifier.5"])
    return blocks + [fc6, fc7], nn.Identity(), "classifier.6"


def densenet(net) -> Cut:
    blocks = [_block(net, "stem", ["features.conv0", "features.norm0", "features.relu0", "features.pool0"])]
    for i in range(1, 5):
        tail = f"features.transition{i}" if i < 4 else "features.norm5"
        blocks.append(_block(net, f"dense{i}", [f"features.denseblock{i}", tail]))
    neck = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return blocks, neck, "classifier"


def convnext(net) -> Cut:
    blocks = [_block(net, "stem", ["features.0"]), _block(net, "stage1", ["features.1"])]
    blocks += [_block(net, f"stage{s}", [f"features.{2 * s - 2}", f"features.{2 * s - 1}"]) for s in (2, 3, 4)]
    neck = nn.Sequential(net.avgpool, net.classifier[0], nn.Flatten(1))
    return blocks, neck, "classifier.2"


def inception_v3(net) -> Cut:
    stem = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"]
    first = _block(net, "stem", stem)
    first.forward = nn.Sequential(_Call(net._transform_input), *[net.get_submodule(p) for p in stem])
    mixed = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
             "Mixed_7a", "Mixed_7b", "Mixed_7c"]
    return [first] + [_block(net, m, [m]) for m in mixed], _pool_flatten(), "fc"


class _ViTEmbed(nn.Module):
    """Patchify, prepend the class token and add position embeddings (the first half of ViT's encoder)."""

    def __init__(self, vit):
        super().__init__()
        self._vit = [vit]  # a list keeps the model unregistered here: its parameters belong to `net`

    def forward(self, x):
        vit = self._vit[0]
        x = vit._process_input(x)
        x = torch.cat([vit.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return vit.encoder.dropout(x + vit.encoder.pos_embedding)


class _ClassToken(nn.Module):
    def forward(self, x):
        return x[:, 0]


def vit(net) -> Cut:
    from tl_core.models.model import Block

    blocks = [Block("embed", ["conv_proj", "class_token", "encoder.pos_embedding"], _ViTEmbed(net))]
    for i, _ in enumerate(net.encoder.layers):
        blocks.append(_block(net, f"layer{i}", [f"encoder.layers.encoder_layer_{i}"]))
    return blocks, nn.Sequential(net.encoder.ln, _ClassToken()), "heads.head"


class _LiteBlock(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)  # drop-connect off: the same features whether cached or not
        return x


def efficientnet_lite(net) -> Cut:
    """The efficientnet_lite_pytorch package's model: 16 MBConv blocks grouped into its 7 stages."""
    from tl_core.models.model import Block

    stem = Block("stem", ["_conv_stem", "_bn0"], nn.Sequential(net._conv_stem, net._bn0, net._swish))
    stages: list[list[int]] = []
    for i, b in enumerate(net._blocks):  # a stage is a run of blocks with the same output width
        if not stages or b._block_args.output_filters != net._blocks[stages[-1][0]]._block_args.output_filters:
            stages.append([])
        stages[-1].append(i)
    blocks = [stem] + [Block(f"stage{s}", [f"_blocks.{j}" for j in idx], _LiteBlock([net._blocks[j] for j in idx]))
                       for s, idx in enumerate(stages, 1)]
    blocks.append(Block("head_conv", ["_conv_head", "_bn1"], nn.Sequential(net._conv_head, net._bn1, net._swish)))
    return blocks, _pool_flatten(), "_fc"
