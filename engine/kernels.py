"""Hand-written forward and backward passes: the RNN, GRU and LSTM recurrences (one layer), the output loss.

Why: with autograd, each time step records a dozen small nodes, and backward through `projected[t]`
allocates a full-size zero gradient per step. The cells here run forward without building a graph,
keep what backward needs in preallocated (num_steps, batch, ·) buffers, and do BPTT by hand:
everything that does not depend on the incoming gradient (the activations' derivatives) is computed
for all steps at once, so each backward step is 2 to 5 tensor ops, and W_hh's gradient is one
(hidden × num_steps·batch) product instead of one small product per step.

Each function takes the input projections for all steps (bias folded in, as F.embedding gives them),
the initial state and W_hh (and b_hh for the GRU, whose b_hn sits inside r * (W_hn h + b_hn)); it
returns the hidden states of every step, whose last row is the final h. The LSTM also returns every
step's cell state. Gates follow torch's layout: RNN tanh; GRU (r, z, n); LSTM (i, f, g, o).
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function

_allocator_tuned = False


def tune_allocator() -> None:
    """Keep freed memory in the process (glibc malloc), so each batch's multi-MB tensors reuse warm pages.

    Why: glibc hands allocations over ~128 KiB straight to mmap and gives them back on free, so every
    batch page-faulted ~1,200 fresh pages (about a fifth of a CPU batch's time on the machine measured).
    A 32 MiB mmap threshold and 64 MiB trim threshold keep them; the model's working set is far below.
    No-op off glibc (macOS, musl, Windows).
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 64 << 20)
    except (OSError, AttributeError):
        pass


def _prev_states(out: Tensor, h0: Tensor) -> Tensor:
    """(num_steps, batch, hidden) of the state each step started from: h0, then out[:-1]."""
    return torch.cat((h0.unsqueeze(0), out[:-1]))


class TanhRecurrence(Function):
    """h_t = tanh(x_t + h_{t-1} W_hh^T), x_t already holding W_ih's column and both biases.

    With overwrite=True the caller gives up `projected` (a fresh tensor it made): the states are
    written over it, so each step is one in-place product and one tanh, with no copies.
    With via_sigmoid=True, tanh(x) is computed as 2 σ(2x) − 1 (within 1e-7 of torch's tanh): torch's
    float tanh is about 7× slower than its sigmoid on the machine measured, which is a sixth of a batch for
    the English edition's tiny model. The Chinese edition's path keeps torch's tanh, so its perplexities
    stay exactly those of earlier versions.
    """

    @staticmethod
    def forward(
        ctx: Any, projected: Tensor, h0: Tensor, w_hh: Tensor, overwrite: bool = False, via_sigmoid: bool = False
    ) -> Tensor:
        if overwrite:
            out = projected
            ctx.mark_dirty(out)
        else:
            out = projected.clone()
        w_t = w_hh.t()
        h = h0
        if via_sigmoid:
            for out_t in out.unbind(0):
                h = out_t.addmm_(h, w_t, beta=2.0, alpha=2.0).sigmoid_().mul_(2.0).sub_(1.0)  # 2x, then 2σ(2x) − 1
        else:
            for out_t in out.unbind(0):
                h = out_t.addmm_(h, w_t).tanh_()
        ctx.save_for_backward(out, h0, w_hh)
        ctx.set_materialize_grads(False)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor | None) -> tuple[Tensor | None, ...]:
        out, h0, w_hh = ctx.saved_tensors
        if grad_out is None:
            return None, None, None, None, None
        slope = torch.addcmul(out.new_ones(()), out, out, value=-1)  # tanh' = 1 − h², every step at once
        grad_pre = grad_out.clone()  # each step's output gradient; the recurrence's part is added in place
        pres, slopes = grad_pre.unbind(0), slope.unbind(0)
        for t in range(len(pres) - 1, -1, -1):
            pres[t].mul_(slopes[t])
            if t:
                pres[t - 1].addmm_(pres[t], w_hh)  # dL/dh_{t-1}: its own output's gradient + recurrence
        grad_h0 = pres[0] @ w_hh if ctx.needs_input_grad[1] else None
        grad_w = None
        if ctx.needs_input_grad[2]:
            hidden = out.shape[-1]
            # Σ_t pre_t^T h_{t-1}: steps 1.. against out[:-1] in one product, step 0 against h0.
            grad_w = torch.mm(grad_pre[1:].reshape(-1, hidden).t(), out[:-1].reshape(-1, hidden))
            grad_w.addmm_(pres[0].t(), h0)
        return grad_pre, grad_h0, grad_w, None, None


class SmallLookup(Function):
    """table[indices] for a small table (a letters-only vocabulary): rows gathered forward, and backward an
    index_add of the gradient rows into the few table rows (embedding's backward sorts the indices first, a tenth
    of a batch for the English edition's tiny model)."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, indices: Tensor) -> Tensor:
        ctx.save_for_backward(indices)
        ctx.rows = table.shape[0]
        return F.embedding(indices, table)  # a new tensor (not a view), which the recurrence may overwrite

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        (indices,) = ctx.saved_tensors
        width = grad.shape[-1]
        grad_table = grad.new_zeros(ctx.rows, width).index_add_(0, indices.reshape(-1), grad.reshape(-1, width))
        return grad_table, None


class GRURecurrence(Function):
    """torch's GRU: r, z = σ(x_rz + W_hrz h + b_hrz); n = tanh(x_n + r (W_hn h + b_hn)); h' = n + z (h − n)."""

    @staticmethod
    def forward(ctx: Any, projected: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        steps, batch, three_h = projected.shape
        hidden = three_h // 3
        out = projected.new_empty(steps, batch, hidden)
        rz = projected.new_empty(steps, batch, 2 * hidden)
        n = projected.new_empty(steps, batch, hidden)
        gh_all = projected.new_empty(steps, batch, three_h)  # W_hh h + b_hh; its n part is needed for r's gradient
        w_t = w_hh.t()
        h = h0
        for t, x_t in enumerate(projected.unbind(0)):
            gh = torch.addmm(b_hh, h, w_t, out=gh_all[t])
            torch.add(x_t[:, : 2 * hidden], gh[:, : 2 * hidden], out=rz[t]).sigmoid_()
            torch.addcmul(x_t[:, 2 * hidden :], rz[t, :, :hidden], gh[:, 2 * hidden :], out=n[t]).tanh_()
            h = torch.lerp(n[t], h, rz[t, :, hidden:], out=out[t])  # n + z (h − n)
        ctx.save_for_backward(out, h0, w_hh, rz, n, gh_all)
        ctx.set_materialize_grads(False)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor | None) -> tuple[Tensor | None, ...]:
        out, h0, w_hh, rz, n, gh_all = ctx.saved_tensors
        if grad_out is None:
            return None, None, None, None
        steps, batch, hidden = out.shape
        hn = gh_all[..., 2 * hidden :]
        r, z = rz[..., :hidden], rz[..., hidden:]
        prev = _prev_states(out, h0)
        # dL/dh_t = g enters every gate linearly; these are the factors, for all steps at once.
        a_n = (1 - z) * (1 - n * n)  # → pre-activation of n (and x_n)
        coeff = torch.stack(
            (
                a_n * hn * r * (1 - r),  # → pre-activation of r
                (prev - n) * z * (1 - z),  # → pre-activation of z
                a_n * r,  # → W_hn h + b_hn
                z,  # → h_{t-1} directly
            ),
            dim=2,
        )  # (steps, batch, 4, hidden)
        products = torch.empty_like(coeff)
        g_all = torch.empty_like(out)
        grads, gs = grad_out.unbind(0), g_all.unbind(0)
        gs[-1].copy_(grads[-1])
        for t in range(steps - 1, -1, -1):
            p = torch.mul(gs[t].unsqueeze(1), coeff[t], out=products[t])
            if t:
                # dL/dh_{t-1} = its output's gradient + z ⊙ g + [d_r, d_z, d_hn] W_hh
                torch.add(grads[t - 1], p[:, 3], out=gs[t - 1])
                gs[t - 1].addmm_(p[:, :3].reshape(batch, 3 * hidden), w_hh)
        d_gh = products[:, :, :3].reshape(steps, batch, 3 * hidden)  # gradient of W_hh h + b_hh
        grad_x = torch.cat((d_gh[..., : 2 * hidden], g_all * a_n), dim=2)
        grad_h0 = None
        if ctx.needs_input_grad[1]:
            grad_h0 = torch.addmm(products[0, :, 3], d_gh[0], w_hh)
        grad_w = d_gh.reshape(-1, 3 * hidden).t() @ prev.reshape(-1, hidden) if ctx.needs_input_grad[2] else None
        grad_b = d_gh.sum((0, 1)) if ctx.needs_input_grad[3] else None
        return grad_x, grad_h0, grad_w, grad_b


class LSTMRecurrence(Function):
    """torch's LSTM: i, f, o = σ(·), g = tanh(·) of x + W_hh h; c' = f c + i g; h' = o tanh(c')."""

    @staticmethod
    def forward(ctx: Any, projected: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
        steps, batch, four_h = projected.shape
        hidden = four_h // 4
        out = projected.new_empty(steps, batch, hidden)
        cells = projected.new_empty(steps, batch, hidden)
        tanh_c = projected.new_empty(steps, batch, hidden)
        acts = projected.new_empty(steps, batch, four_h)  # σ(i), σ(f), tanh(g), σ(o)
        w_t = w_hh.t()
        h, c = h0, c0
        for t, x_t in enumerate(projected.unbind(0)):
            a = torch.addmm(x_t, h, w_t, out=acts[t])
            a[:, : 2 * hidden].sigmoid_()
            a[:, 2 * hidden : 3 * hidden].tanh_()
            a[:, 3 * hidden :].sigmoid_()
            c = torch.mul(a[:, hidden : 2 * hidden], c, out=cells[t]).addcmul_(
                a[:, :hidden], a[:, 2 * hidden : 3 * hidden]
            )
            h = torch.mul(a[:, 3 * hidden :], torch.tanh(c, out=tanh_c[t]), out=out[t])
        ctx.save_for_backward(out, cells, tanh_c, acts, h0, c0, w_hh)
        ctx.set_materialize_grads(False)
        return out, cells

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor | None, grad_cells: Tensor | None) -> tuple[Tensor | None, ...]:
        out, cells, tanh_c, acts, h0, c0, w_hh = ctx.saved_tensors
        steps, batch, hidden = out.shape
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        i, f, g, o = acts.unflatten(2, (4, hidden)).unbind(2)
        prev_h = _prev_states(out, h0)
        prev_c = _prev_states(cells, c0)
        # Factors of the gradient, for all steps at once: dc = dc_next + dh ⊙ o (1 − tanh²c).
        via_h = o * (1 - tanh_c * tanh_c)
        coeff_c = torch.stack((g * i * (1 - i), prev_c * f * (1 - f), i * (1 - g * g)), dim=2)  # (steps, batch, 3, h)
        coeff_o = tanh_c * o * (1 - o)
        d_gates = out.new_empty(steps, batch, 4, hidden)
        grads, gates = grad_out.unbind(0), d_gates.unbind(0)
        cell_grads = grad_cells.unbind(0) if grad_cells is not None else None
        g_h = grads[-1]
        d_c = cell_grads[-1] if cell_grads is not None else torch.zeros_like(g_h)
        for t in range(steps - 1, -1, -1):
            d_c = torch.addcmul(d_c, g_h, via_h[t])
            torch.mul(d_c.unsqueeze(1), coeff_c[t], out=gates[t][:, :3])
            torch.mul(g_h, coeff_o[t], out=gates[t][:, 3])
            d_c = d_c * f[t]  # dL/dc_{t-1}
            if cell_grads is not None and t:
                d_c += cell_grads[t - 1]
            if t:
                g_h = torch.addmm(grads[t - 1], gates[t].reshape(batch, 4 * hidden), w_hh)
        d_flat = d_gates.reshape(steps, batch, 4 * hidden)
        grad_h0 = d_flat[0] @ w_hh if ctx.needs_input_grad[1] else None
        grad_c0 = d_c if ctx.needs_input_grad[2] else None
        grad_w = d_flat.reshape(-1, 4 * hidden).t() @ prev_h.reshape(-1, hidden) if ctx.needs_input_grad[3] else None
        return d_flat, grad_h0, grad_c0, grad_w


class LinearCrossEntropy(Function):
    """mean cross-entropy of softmax(hidden W^T + b) against targets: the dense layer and the loss in one.

    Why: the book's vocabulary (1,027) is an awkward width for the BLAS; computing the logits transposed,
    (vocab, rows) = W hidden^T, is about twice as fast on the CPUs measured (docs/performance.md), and the
    softmax's gradient (probabilities minus one-hot) is formed in place instead of through log_softmax's
    backward. Equal to F.cross_entropy(F.linear(hidden, weight, bias), targets).

    low (engine/precision.py): None keeps every product in float32. torch.bfloat16 runs the three products (logits,
    grad wrt hidden, grad wrt W) on bfloat16 copies of their operands, accumulating in float32 inside the product;
    the logits are widened back before the bias and the softmax, and the gradients returned are float32, so the
    weights the optimizer updates stay float32. keep: the names of products kept in float32 even so ("logits",
    "grad_hidden", "grad_weight"): variants that bench/precision_quality.py --keep measures; training keeps none.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor,
        targets: Tensor,
        low: torch.dtype | None = None,
        keep: frozenset[str] = frozenset(),
    ) -> Tensor:
        if low is None:
            logits = torch.mm(weight, hidden.t()).add_(bias.unsqueeze(1))  # (vocab, rows); addmm would copy the bias
            saved = (hidden, weight)
        else:
            # The low copies are kept for backward in place of float32 ones (half the memory); the float32 weight
            # (a parameter: no copy) as well when grad_hidden stays float32.
            hidden_low, weight_low = hidden.to(low), weight.to(low)
            if "logits" in keep:
                logits = torch.mm(weight, hidden.t()).add_(bias.unsqueeze(1))
            else:
                logits = torch.mm(weight_low, hidden_low.t()).float().add_(bias.unsqueeze(1))
            saved = (hidden if "grad_weight" in keep else hidden_low, weight if "grad_hidden" in keep else weight_low)
        picked = logits.gather(0, targets.unsqueeze(0))
        top = logits.amax(0, keepdim=True)
        exps = logits.sub_(top).exp_()  # reuses the logits' memory
        total = exps.sum(0, keepdim=True)
        ctx.save_for_backward(*saved, targets, exps, total)
        ctx.low, ctx.keep = low, keep
        return (total.log() + top - picked).mean()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, targets, exps, total = ctx.saved_tensors
        rows = hidden.shape[0]
        scale = grad / rows
        d_logits = exps * (scale / total)  # (vocab, rows): softmax − one-hot, times the mean's 1/rows
        d_logits[targets, torch.arange(rows, device=targets.device)] -= scale
        grad_bias = d_logits.sum(1) if ctx.needs_input_grad[2] else None  # float32 in both precisions
        d_low = d_logits if ctx.low is None else d_logits.to(ctx.low)
        d_hidden = d_logits if weight.dtype == torch.float32 else d_low  # each product in its operands' dtype
        d_weight = d_logits if hidden.dtype == torch.float32 else d_low
        grad_hidden = (d_hidden.t() @ weight).float() if ctx.needs_input_grad[0] else None  # .float(): no-op in fp32
        grad_weight = (d_weight @ hidden).float() if ctx.needs_input_grad[1] else None
        return grad_hidden, grad_weight, grad_bias, None, None, None
