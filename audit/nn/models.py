"""Model architectures, each exposing its penultimate features.

A model plugin is a factory `build(input_shape, num_classes, **options) -> Classifier`
registered in `MODELS` (or through the entry-point group `salun.models`). salun builds it
on the meta device and initialises every weight from an explicit generator, so an
original's init depends only on its seed and never on global RNG state.
"""

from __future__ import annotations

import inspect
import math
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn

from audit.core.errors import SalunInputError
from audit.core.registry import MODELS

Width = Annotated[int, Field(ge=1, le=16_384)]  # units of a layer, or channels of its first convolution
Layers = Annotated[tuple[Width, ...], Field(min_length=1, max_length=100)]


class Classifier(nn.Module):
    """forward(x) = head(features(x)); `features` gives the penultimate representation."""

    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FeatureView(nn.Module):
    """forward = model.features, so code that runs models batch by batch can run the features."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


class MLP(Classifier):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(Classifier):
    def __init__(self, channels: int, num_classes: int, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet-18 for small images: 3x3 stem with stride 1 and no max-pool."""

    def __init__(self, channels: int, num_classes: int, width: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, inputs = [], width
        for multiple, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            outputs = width * multiple
            stages += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(inputs, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))


class FastCIFAR(Classifier):
    """The CIFAR-10 speed-run network (Page's "How to train your ResNet", Jordan's airbench):
    a 2x2 stem, then conv-pool-norm-GELU groups, a global max-pool and a linear head on
    features scaled by HEAD_SCALE. The stem is a plain convolution: the speed-runs whiten it
    from the training images, which a model built from a seed alone cannot see."""

    HEAD_SCALE = 1 / 9  # airbench's output scale: small logits at init, for a high learning rate

    def __init__(self, channels: int, num_classes: int, widths: tuple[int, ...]):
        super().__init__()
        stem = 2 * channels * 2 * 2  # as many outputs as a whitening 2x2 stem: each patch eigenvector and its negative
        self.stem = nn.Sequential(nn.Conv2d(channels, stem, 2), nn.GELU())
        groups, inputs = [], stem
        for outputs in widths:
            groups.append(nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.MaxPool2d(2),
                nn.BatchNorm2d(outputs), nn.GELU(),
                nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.GELU(),
            ))
            inputs = outputs
        self.groups = nn.Sequential(*groups)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(inputs, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.groups(self.stem(x))) * self.HEAD_SCALE


@MODELS.register("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: Layers = (128, 64)) -> Classifier:
    """Fully connected network on flattened inputs; features = last hidden layer."""
    if not hidden or any(size < 1 for size in hidden):
        raise SalunInputError(f"model.hidden: expected positive layer sizes, got {list(hidden)}")
    return MLP(input_shape, num_classes, tuple(hidden))


@MODELS.register("cnn")
def cnn(input_shape: tuple[int, ...], num_classes: int, width: Width = 16) -> Classifier:
    """Small convnet (3 conv layers, global average pool) for digits and MNIST-sized images."""
    if width < 1:
        raise SalunInputError(f"model.width: must be at least 1, got {width}")
    return SmallCNN(input_shape[0], num_classes, width)


@MODELS.register("resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int, width: Width = 64) -> Classifier:
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool); features = pooled last stage."""
    if width < 1:
        raise SalunInputError(f"model.width: must be at least 1, got {width}")
    return ResNet18(input_shape[0], num_classes, width)


@MODELS.register("fastcifar")
def fastcifar(input_shape: tuple[int, ...], num_classes: int, widths: Layers = (64, 256, 256)) -> Classifier:
    """The CIFAR-10 speed-run network (airbench's layout, plain stem); features = max-pooled last group."""
    if not widths or any(size < 1 for size in widths):
        raise SalunInputError(f"model.widths: expected positive channel counts, got {list(widths)}")
    smallest = 2 ** len(widths) + 1  # the 2x2 stem takes one pixel, each group halves the side
    if min(input_shape[1:]) < smallest:
        raise SalunInputError(
            f"model.widths: {len(widths)} groups need images of at least {smallest}x{smallest} pixels, "
            f"got {'x'.join(map(str, input_shape[1:]))}; give fewer widths")
    return FastCIFAR(input_shape[0], num_classes, tuple(widths))


_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def initialise(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, drawn from `generator` instead of the global RNG."""
    done: set[int] = set()
    for module in model.modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if not own:
            continue
        if isinstance(module, _LAYERS):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, _NORMS):
            module.reset_parameters()
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, generator=generator)
        elif "generator" in inspect.signature(getattr(module, "reset_parameters", lambda: None)).parameters:
            module.reset_parameters(generator=generator)
        else:
            raise SalunInputError(
                f"model: salun cannot initialise a {type(module).__name__} from a seed; give it "
                f"reset_parameters(generator) or build it from standard layers"
            )
        done.update(id(t) for t in own)
    missing = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if id(t) not in done]
    if missing:
        raise SalunInputError(f"model: parameters left uninitialised: {', '.join(missing[:5])}")


def build_model(
    arch: str,
    options: dict[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Classifier:
    """A freshly initialised model; the same generator state gives the same weights on any device."""
    factory = MODELS.get(arch, path="model.arch")
    with torch.device("meta"):
        model = factory(tuple(input_shape), num_classes, **options)
    if not callable(getattr(model, "features", None)) or not isinstance(getattr(model, "head", None), nn.Module):
        raise SalunInputError(
            f"model.arch: '{arch}' must expose features(x) (its penultimate representation) "
            f"and a head module, as audit.nn.models.Classifier does"
        )
    model = model.to_empty(device="cpu")
    initialise(model, generator)
    return model.to(device)
