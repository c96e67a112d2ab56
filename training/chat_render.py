"""Rendering one model call through a tokenizer's chat template, for training.

When a backend did not record token ids, the only way to know what the model saw is to render
the step's exact input again with the model's own chat template. The reply is located by
rendering twice: the prompt with the generation prompt on, and the prompt plus the reply as an
assistant turn. The reply's tokens are what lies between the two — up to and including the
end-of-turn token (the model must learn to stop) but not the glue a template writes after it
(``"\\n"`` after ``<|im_end|>``), which the model never generates: it reappears as prompt in the
next step.

Messages and tool specs become template dicts through :mod:`agentkit.chat_dicts`, the same
conversion the transformers backend renders with, so both paths see identical dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from agentkit.chat_dicts import template_messages, tool_dicts
from agentkit.types import Completion, Message, ToolSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
)
"""End-of-turn markers of common chat formats, used beside the tokenizer's own ``eos_token``:
many tokenizers name a document end as eos while their template ends turns with another token."""


class SequenceError(ValueError):
    """A trajectory cannot be turned into token sequences; the message says what to change."""


class NoChatTemplateError(SequenceError):
    """A step has no recorded token ids and the tokenizer has no chat template to render it."""


class TemplateRenderError(SequenceError):
    """The chat template failed on a step, or renders a reply that does not follow its prompt."""


@dataclass(frozen=True)
class RenderedStep:
    """A step's prompt ids (generation prompt included) and the reply's ids as the model would
    have produced them after that prompt."""

    prompt_ids: list[int]
    completion_ids: list[int]


def reply_message(completion: Completion) -> Message:
    """The assistant turn a reply becomes in the history: its text and its native tool calls
    (text call formats carry no tool calls, so this is their history message too)."""
    return Message(role="assistant", content=completion.text, tool_calls=completion.tool_calls)


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Token ids that end an assistant turn for this tokenizer: its eos and the known markers
    it has as single tokens."""
    found: set[int] = set()
    if isinstance(tokenizer.eos_token_id, int):
        found.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    found.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return frozenset(found)


def render_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    tools: list[ToolSpec],
    *,
    add_generation_prompt: bool,
) -> list[int]:
    """Token ids of ``messages`` through the tokenizer's chat template, as a server renders them."""
    if not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplateError(
            "The tokenizer has no chat template, so steps without recorded token ids cannot be "
            "rendered. Load the model's own tokenizer (AutoTokenizer.from_pretrained(<model dir>)), "
            "set tokenizer.chat_template, or collect trajectories with a backend that records "
            "token ids (openai backend with request_token_ids: true, or the hf backend)."
        )
    specs: list[Any] = tool_dicts(tools)  # the stubs' list type is invariant
    try:
        encoded: Any = tokenizer.apply_chat_template(
            template_messages(messages),
            tools=specs or None,
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
        )
    except TemplateError as exc:
        raise TemplateRenderError(f"The chat template failed on this conversation: {exc}") from exc
    ids = encoded if isinstance(encoded, list) else encoded["input_ids"]
    return [int(token) for token in ids]


def render_step(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    tools: list[ToolSpec],
    completion: Completion,
) -> RenderedStep:
    """The prompt and reply ids of one model call, rendered with the chat template.

    A reply cut by the token limit (``finish_reason == "length"``) never produced its
    end-of-turn token, so none is included: the template's closing of that turn shows up as
    prompt of the next step instead.
    """
    prompt = render_ids(tokenizer, messages, tools, add_generation_prompt=True)
    full = render_ids(
        tokenizer, [*messages, reply_message(completion)], tools, add_generation_prompt=False
    )
    if full[: len(prompt)] != prompt:
        raise TemplateRenderError(
            "The chat template does not render the reply as a continuation of the generation "
            f"prompt (they differ at token {first_difference(prompt, full)}), so the reply's "
            "tokens cannot be located. Collect trajectories with recorded token ids instead "
            "(request_token_ids: true), which need no template."
        )
    turn = full[len(prompt) :]
    ends = end_of_turn_ids(tokenizer)
    end = next((i + 1 for i in range(len(turn) - 1, -1, -1) if turn[i] in ends), len(turn))
    if completion.finish_reason == "length" and end > 0 and turn[end - 1] in ends:
        end -= 1
    return RenderedStep(prompt_ids=prompt, completion_ids=turn[:end])


def first_difference(left: list[int], right: list[int]) -> int | None:
    """Index of the first position where two id lists differ (the shorter length when one is a
    prefix of the other); ``None`` when they are equal."""
    if left == right:
        return None
    for i, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return i
    return min(len(left), len(right))
