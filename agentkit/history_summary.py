"""The ``llm_summary`` history processor: a condenser.

When what would be sent grows past a threshold (``max_messages``, or ``max_tokens`` estimated at
four characters a token), the middle of the conversation (everything after the first
``keep_first`` messages and before the last ``keep_last`` or so) is replaced by one summary message
that the model writes. The model's next input is then: the first messages, the summary, the recent
messages.

The summary is made once per threshold crossing and the same message object is sent at every
later step, so the trajectory's message pool stores it once; at the next crossing the previous
summary and the messages since are summarised together. The summary call goes through the
agent's :class:`~agentkit.history_base.HistoryContext`: it is recorded in the trajectory as a step
of kind ``condensation`` with its exact input and completion, and its cost counts.

A backend error while summarising ends the run like any backend error (exit status
``backend_error``; ``context_exceeded`` if the summary prompt itself is too long): no silent
fallback, so a run's trajectory never hides that the condenser did not work. A summary that comes
back empty is such an error too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from agentkit.backend import BackendError
from agentkit.history_base import (
    HistoryContext,
    HistoryProcessorBase,
    estimate_tokens,
    register_history_processor,
)
from agentkit.prompts import render
from agentkit.types import Message, SamplingParams

DEFAULT_SUMMARY_PROMPT = """\
You are condensing the history of a software-engineering agent's work so that it can go on with a \
shorter context. Write a summary that replaces the steps below.
{% if previous_summary %}
The summary of the steps before them:
{{ previous_summary }}
{% endif %}
The steps to summarise:
{% for m in messages %}
<{{ m.role }}>
{{ m.content }}
{%- for call in m.tool_calls %}
[called {{ call.name }} with {{ call.arguments }}]
{%- endfor %}
</{{ m.role }}>
{% endfor %}
Keep what the agent needs to finish the task: what it found, the files it changed and how, what it \
tried that failed and why, and what remains to do. Keep exact file paths, names and error \
messages. Answer with the summary only.
"""

DEFAULT_SUMMARY_MESSAGE = """\
[The earlier steps were condensed to save context. Summary of them:]
{{ summary }}"""

_STATE = "llm_summary"


@dataclass(frozen=True)
class _Condensed:
    cut: int
    """The summary stands for ``input[keep_first:cut]``."""
    summary: Message
    """The message sent in their place (the same object at every step)."""
    text: str
    """What the model wrote (the next summary's ``previous_summary``)."""


@register_history_processor
class LLMSummary(HistoryProcessorBase):
    """Replace the middle of a long conversation with a summary written by the model.

    ``prompt_template`` (jinja) gets ``messages`` (the messages to summarise, each content cut to
    ``message_chars``), ``previous_summary`` (``""`` the first time) and ``head`` (the kept first
    messages); ``summary_template`` turns the model's ``summary`` into the message sent.
    ``sampling``: the summary call's parameters (``None``: the scaffold's). Use at most one per
    scaffold; put ``cache_markers`` after it.
    """

    type: Literal["llm_summary"] = "llm_summary"
    keep_first: int = Field(default=2, ge=0)
    keep_last: int = Field(default=10, ge=1)
    max_messages: int | None = Field(default=40, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    prompt_template: str = DEFAULT_SUMMARY_PROMPT
    summary_template: str = DEFAULT_SUMMARY_MESSAGE
    message_chars: int | None = Field(default=4000, ge=1)
    sampling: SamplingParams | None = None

    @model_validator(mode="after")
    def _thresholds(self) -> LLMSummary:
        if self.max_messages is None and self.max_tokens is None:
            raise ValueError("set max_messages or max_tokens: the size that triggers a summary")
        floor = self.keep_first + 1 + self.keep_last
        if self.max_messages is not None and self.max_messages <= floor:
            raise ValueError(
                f"max_messages ({self.max_messages}) must exceed keep_first + 1 + keep_last "
                f"({floor}), or every step would summarise again"
            )
        return self

    def apply(
        self, history: list[Message], observations: list[int], cache: dict[Any, Any]
    ) -> list[Message]:
        """Without the model (no context), the last summary is kept and no new one made."""
        return self._view(history, cache.get(_STATE))

    async def apply_async(
        self,
        history: list[Message],
        observations: list[int],
        cache: dict[Any, Any],
        context: HistoryContext,
    ) -> list[Message]:
        state: _Condensed | None = cache.get(_STATE)
        view = self._view(history, state)
        if not self._over(view):
            return view
        start = state.cut if state else self.keep_first
        cut = self._cut(history, start)
        if cut is None:
            return view  # nothing (or only the recent messages) left to summarise
        messages = [self._shortened(message) for message in history[start:cut]]
        prompt = render(
            self.prompt_template,
            "llm_summary prompt_template",
            messages=messages,
            previous_summary=state.text if state else "",
            head=history[: self.keep_first],
        )
        completion = await context.complete([Message(role="user", content=prompt)], self.sampling)
        text = completion.text.strip()
        if not text:
            raise BackendError(
                "The model answered the history summary request with no text "
                f"(finish reason {completion.finish_reason!r}); the conversation was not condensed."
            )
        content = render(self.summary_template, "llm_summary summary_template", summary=text)
        state = _Condensed(cut=cut, summary=Message(role="user", content=content), text=text)
        cache[_STATE] = state
        return self._view(history, state)

    # -- helpers --------------------------------------------------------------------------------

    def _view(self, history: list[Message], state: _Condensed | None) -> list[Message]:
        if state is None:
            return history
        return [*history[: self.keep_first], state.summary, *history[state.cut :]]

    def _over(self, view: list[Message]) -> bool:
        if self.max_messages is not None and len(view) > self.max_messages:
            return True
        return self.max_tokens is not None and estimate_tokens(view) > self.max_tokens

    def _cut(self, history: list[Message], start: int) -> int | None:
        """Where the kept recent messages begin: at most ``len - keep_last``, moved back to an
        assistant turn so no tool result loses the call it answers; ``None`` if that leaves
        nothing after ``start`` to summarise."""
        cut = len(history) - self.keep_last
        while cut > start and history[cut].role != "assistant":
            cut -= 1
        return cut if cut > start else None

    def _shortened(self, message: Message) -> Message:
        limit = self.message_chars
        if limit is None or len(message.content) <= limit:
            return message
        dropped = len(message.content) - limit
        content = f"{message.content[:limit]}\n[... {dropped} more characters not shown]"
        return message.model_copy(update={"content": content})
