"""Model -> architecture: the one step between inspection and generation that needs judgement."""

from __future__ import annotations

from dataclasses import dataclass

from dsparsers.api.architecture import Match
from dsparsers.errors import ModelError, UsageError
from dsparsers.model.reader import ModelInfo
from dsparsers.api.registry import Provided, Registry

#: a runner-up this close to the best match makes the choice ambiguous
AMBIGUITY_MARGIN = 0.15


@dataclass(frozen=True)
class Choice:
    provided: Provided
    requested_as: str
    matches: list[Match]


def heads_text(model: ModelInfo) -> str:
    return ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in model.outputs)


def choose(registry: Registry, model: ModelInfo | None, arch: str | None) -> Choice:
    if arch:
        provided = registry.get(arch)
        matches = registry.rank(model) if model is not None else []
        return Choice(provided, arch.strip().lower(), matches)
    if model is None:
        raise UsageError("--arch is required without --onnx (e.g. --arch yolo11; `dsparsers plugins` lists them)")
    matches = registry.rank(model)
    positive = [m for m in matches if m.score > 0]
    if not positive:
        near = [m for m in matches if m.score == 0]
        if near:
            closest = "; closest: " + "; ".join(f"{m.architecture} ({m.reason})" for m in near)
        else:
            closest = "; known heads: " + "; ".join(f"{p.architecture.name}: {p.architecture.head}"
                                                    for p in registry.architectures())
        raise ModelError(f"{model.path}: no architecture recognises its outputs {heads_text(model)}{closest}")
    best = positive[0]
    rivals = [m for m in positive[1:] if best.score - m.score < AMBIGUITY_MARGIN]
    if rivals:
        listed = ", ".join(f"{m.architecture} ({m.score:.2f}: {m.reason})" for m in [best, *rivals])
        raise UsageError(f"{model.path}: its heads match several architectures: {listed}; "
                         f"--arch NAME settles it")
    provided = registry.get(best.architecture)
    return Choice(provided, provided.architecture.name, matches)
