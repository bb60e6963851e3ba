"""The book's optimizers, Adam and SGD at torch's defaults, run with torch's own kernels but without torch.optim.

Why: building or stepping any torch.optim optimizer imports torch._dynamo (1.5 to 2.4 s on the machine measured,
a third of the wait from launch to the first epoch) for torch.compile, which this project never uses. Adam here
calls the kernel torch.optim.Adam(fused=True) calls, with the same arguments and the same state; SGD makes the
step torch.optim.SGD makes. The weights match torch.optim's bit for bit and the state_dict has torch.optim's
format, so checkpoints load either way (tests/test_optim.py). Elsewhere (Apple's MPS) torch.optim.Adam is used.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

# torch.optim's defaults, as its state_dict records them.
ADAM_GROUP: dict[str, Any] = {
    "betas": (0.9, 0.999),
    "eps": 1e-08,
    "weight_decay": 0,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": True,
    "decoupled_weight_decay": False,
}
SGD_GROUP: dict[str, Any] = {
    "momentum": 0,
    "dampening": 0,
    "weight_decay": 0,
    "nesterov": False,
    "maximize": False,
    "foreach": None,
    "differentiable": False,
    "fused": None,
}


class Optimizer(Protocol):
    """What the trainer uses of an optimizer: torch.optim's names, one parameter group."""

    param_groups: list[dict[str, Any]]

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class _OneGroup:
    """One parameter group and per-parameter state, saved and loaded in torch.optim's state_dict format."""

    def __init__(self, params: list[Tensor], lr: float, group: dict[str, Any]) -> None:
        self.params = params
        self.param_groups = [{"lr": lr, **group, "params": params}]
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        index = {param: i for i, param in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {
            "state": {index[param]: dict(values) for param, values in self.state.items()},
            "param_groups": [{**group, "params": list(range(len(self.params)))}],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the optimizer state does not match the model's parameters")
        saved = state_dict["state"]
        self.state = {}
        for param, index in zip(self.params, groups[0]["params"], strict=True):
            if index in saved:
                self.state[param] = {name: self._placed(name, value, param) for name, value in saved[index].items()}
        self.param_groups[0].update({k: v for k, v in groups[0].items() if k != "params"})

    @staticmethod
    def _placed(name: str, value: Any, param: Tensor) -> Any:
        if not isinstance(value, Tensor):
            return value
        if name == "step":  # the fused kernel keeps its step count in float32 beside the parameter
            return value.to(device=param.device, dtype=torch.float32)
        return lay_out_like(value.to(device=param.device, dtype=param.dtype), param)


def lay_out_like(value: Tensor, param: Tensor) -> Tensor:
    """value with param's memory layout: the fused Adam kernel walks a parameter and its state as one flat array,
    so a state laid out otherwise (a checkpoint from before W_ih was stored column-major) would update wrongly."""
    if value.shape != param.shape or value.stride() == param.stride():
        return value
    return torch.empty_like(param, dtype=value.dtype).copy_(value)


class Adam(_OneGroup):
    """torch.optim.Adam(params, lr, weight_decay, fused=True), otherwise at its defaults (betas 0.9 and 0.999, eps
    1e-8), as the book trains. Weight decay is Adam's L2: weight_decay × the weight added to the gradient."""

    def __init__(self, params: list[Tensor], lr: float, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        super().__init__(
            params, lr, {**ADAM_GROUP, "weight_decay": weight_decay, "decoupled_weight_decay": decoupled}
        )

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for param in self.params:
            if param.grad is None:
                continue
            state = self.state.get(param)
            if not state:
                state = self.state[param] = {
                    "step": torch.zeros((), dtype=torch.float32, device=param.device),
                    "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                }
            params.append(param)
            grads.append(param.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        # decoupled: AdamW's kernel, which shrinks each weight by lr × weight_decay apart from the gradient's moments
        fused = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        fused(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


class SGD(_OneGroup):
    """torch.optim.SGD(params, lr, weight_decay): no momentum, as the book's from-scratch RNN trains; with weight decay
    weight_decay × the weight is added to the gradient first, as torch.optim.SGD does."""

    def __init__(self, params: list[Tensor], lr: float, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        super().__init__(params, lr, {**SGD_GROUP, "weight_decay": weight_decay})
        self.decoupled = decoupled  # the weights shrunk by lr × weight_decay first (torch.optim.SGD has no such key)

    @torch.no_grad()
    def step(self) -> None:
        lr, weight_decay = self.param_groups[0]["lr"], self.param_groups[0]["weight_decay"]
        for param in self.params:
            if param.grad is None:
                continue
            if self.decoupled and weight_decay:
                param.mul_(1 - lr * weight_decay)
                grad = param.grad
            else:
                grad = param.grad.add(param, alpha=weight_decay) if weight_decay else param.grad
            param.add_(grad, alpha=-lr)


def make_optimizer(
    name: str,
    params: list[Tensor],
    lr: float,
    device: torch.device,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> Optimizer:
    """The optimizer the config names, for parameters on device; decoupled: AdamW's weight decay (--decay)."""
    if name == "sgd":
        return SGD(params, lr, weight_decay, decoupled)
    if device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_"):
        return Adam(params, lr, weight_decay, decoupled)
    # elsewhere, torch's own choice of kernel
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, decoupled_weight_decay=decoupled)
