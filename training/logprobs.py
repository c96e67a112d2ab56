"""Log-probabilities of trained tokens, without full-vocabulary logits for the whole batch.

A causal LM's logits are ``rows × width × vocabulary`` floats; for agent trajectories (long
prompts, short actions, a 150k vocabulary) they dwarf everything else in memory, and most of them
belong to tokens that are not trained. Here the backbone runs to its last hidden states, only the
positions whose next token is trained are gathered, and the LM head is applied to them chunk by
chunk. For a plain linear head, a custom autograd function keeps just the hidden states and one
log-sum-exp per token for the backward pass, where each chunk's logits are recomputed: memory is
one chunk of logits at any time, forward or backward.

Position ``t - 1`` predicts token ``t``; the first token of a sequence is never a target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .batching import MicroBatch

DEFAULT_CHUNK_TOKENS = 1024


def _linear_function() -> Any:
    """Built on first use so that importing this module does not import torch."""
    global _LINEAR_FUNCTION
    if _LINEAR_FUNCTION is not None:
        return _LINEAR_FUNCTION
    import torch
    import torch.nn.functional as F

    class LinearTokenLogProbs(torch.autograd.Function):
        @staticmethod
        def forward(  # type: ignore[override]
            ctx: Any,
            hidden: torch.Tensor,
            weight: torch.Tensor,
            bias: torch.Tensor | None,
            targets: torch.Tensor,
            chunk: int,
        ) -> torch.Tensor:
            count = hidden.shape[0]
            out = torch.empty(count, dtype=torch.float32, device=hidden.device)
            lse = torch.empty_like(out)
            for start in range(0, count, chunk):
                end = min(start + chunk, count)
                logits = F.linear(hidden[start:end], weight, bias).float()
                lse[start:end] = torch.logsumexp(logits, dim=-1)
                picked = logits.gather(1, targets[start:end, None]).squeeze(1)
                out[start:end] = picked - lse[start:end]
            ctx.save_for_backward(hidden, weight, bias, targets, lse)
            ctx.chunk = chunk
            return out

        @staticmethod
        def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
            hidden, weight, bias, targets, lse = ctx.saved_tensors
            need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
            grad_hidden = torch.empty_like(hidden) if need_hidden else None
            grad_weight = torch.zeros_like(weight) if need_weight else None
            grad_bias = torch.zeros_like(bias) if need_bias and bias is not None else None
            grad_out = grad_out.float()
            for start in range(0, hidden.shape[0], ctx.chunk):
                end = min(start + ctx.chunk, hidden.shape[0])
                h = hidden[start:end]
                go = grad_out[start:end, None]
                # d logp[target] / d logits = onehot(target) - softmax(logits)
                grad = F.linear(h, weight, bias).float().sub_(lse[start:end, None]).exp_()
                grad.mul_(-go).scatter_add_(1, targets[start:end, None], go)
                grad = grad.to(weight.dtype)
                if grad_hidden is not None:
                    torch.mm(grad, weight, out=grad_hidden[start:end])
                if grad_weight is not None:
                    grad_weight.addmm_(grad.t(), h)
                if grad_bias is not None:
                    grad_bias += grad.sum(0)
            return grad_hidden, grad_weight, grad_bias, None, None

    _LINEAR_FUNCTION = LinearTokenLogProbs
    return _LINEAR_FUNCTION


_LINEAR_FUNCTION: Any = None


def linear_token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """``log_softmax(hidden @ weight.T + bias)[i, targets[i]]`` for ``hidden`` of shape (N, H),
    in float32, computed ``chunk_tokens`` rows at a time in both passes."""
    result: torch.Tensor = _linear_function().apply(hidden, weight, bias, targets, chunk_tokens)
    return result


def head_token_logprobs(
    hidden: torch.Tensor,
    head: torch.nn.Module,
    targets: torch.Tensor,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """The same for any LM head module (e.g. one wrapped by an adapter): each chunk's logits are
    recomputed in the backward pass through activation checkpointing."""
    import torch
    from torch.utils.checkpoint import checkpoint

    if isinstance(head, torch.nn.Linear):
        return linear_token_logprobs(hidden, head.weight, head.bias, targets, chunk_tokens)

    def chunk_logprobs(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        logits = head(h).float()
        return logits.gather(1, t[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)

    parts = [
        checkpoint(chunk_logprobs, hidden[s : s + chunk_tokens], targets[s : s + chunk_tokens],
                   use_reentrant=False)
        for s in range(0, hidden.shape[0], chunk_tokens)
    ]  # fmt: skip
    if not parts:
        return hidden.new_zeros(0, dtype=torch.float32) + hidden.sum() * 0.0
    return torch.cat(parts)


def targets_from_mask(
    input_ids: torch.Tensor, loss_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices into the ``(rows × width)`` positions that predict a trained token, and those
    tokens: position ``t - 1`` of a row predicts token ``t`` where ``loss_mask[t] == 1``."""
    rows, width = input_ids.shape
    shifted = loss_mask[:, 1:].bool()
    row, col = shifted.nonzero(as_tuple=True)
    index = row * width + col
    return index, input_ids[:, 1:][shifted]


def token_logprobs(
    hidden_states: torch.Tensor,
    head: torch.nn.Module,
    target_index: torch.Tensor,
    target_ids: torch.Tensor,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """Log-probabilities of ``target_ids`` predicted at ``target_index`` (flat positions of the
    ``(rows, width, hidden)`` states); no other position reaches the LM head, so no other
    position receives a gradient."""
    flat = hidden_states.reshape(-1, hidden_states.shape[-1])
    return head_token_logprobs(flat.index_select(0, target_index), head, target_ids, chunk_tokens)


def causal_lm(model: torch.nn.Module) -> Any:
    """The transformers causal LM inside ``model`` (itself, or the one a PEFT wrapper holds)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def check_plain_head(model: torch.nn.Module) -> None:
    """Refuse models whose logits are scaled or soft-capped after the LM head: the chunked head
    computes ``log_softmax(head(h))`` and would silently train a different distribution."""
    config = causal_lm(model).config.get_text_config()
    for name in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier"):
        value = getattr(config, name, None)
        if value not in (None, 1, 1.0):
            raise ValueError(f"models with {name}={value} are not supported by this trainer")


def batch_logprobs(
    model: torch.nn.Module, batch: MicroBatch, chunk_tokens: int = DEFAULT_CHUNK_TOKENS
) -> torch.Tensor:
    """Log-probabilities of a micro-batch's trained tokens under ``model``, in target order."""
    lm = causal_lm(model)
    outputs = lm.get_decoder()(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    )
    return token_logprobs(
        outputs.last_hidden_state,
        lm.get_output_embeddings(),
        batch.target_index,
        batch.target_ids,
        chunk_tokens,
    )
