"""Transfer Lab's engine. Importing the package imports no torch: the app reads the run plan before Start through
these functions, and they load the engine only when called."""

from __future__ import annotations


def plan_for(config, dataset):
    """The run plan (tl_core.engine.plan.RunPlan) the run will train: what trains per block and per epoch, each
    block's rate, the planned epochs and steps. Pass it to JobManager.submit(plan=...) so the run trains exactly it."""
    from tl_core.engine.planning import plan_for as _plan_for

    return _plan_for(config, dataset)


def config_plan(config, n_classes: int):
    """What trains, from the settings alone (no data read, no budget): the block diagram before a split exists."""
    from tl_core.engine.planning import config_plan as _config_plan

    return _config_plan(config, n_classes)


def depth_label(plan) -> str:
    """"k=5", the recipe's words ("tunes stage3 only"), or "" (frozen, from scratch): a RunPlan or its dict."""
    from tl_core.engine.plan import depth_label as _depth_label

    return _depth_label(plan)


def default_depth(n_blocks: int) -> int:
    """The freeze depth of a fine-tune that names none."""
    from tl_core.engine.plan import default_depth as _default_depth

    return _default_depth(n_blocks)
