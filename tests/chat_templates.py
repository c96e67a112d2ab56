"""Small fast tokenizers with real-world chat templates, built locally for the training tests.

No tokenizer can be downloaded here, and the sequence code must be shown to work with the
templates models actually ship. So one byte-level BPE (the Qwen2 pre-tokenizer, trained in well
under a second on a small corpus) is wrapped three times, each time with a different template:

- :data:`QWEN25_TEMPLATE`: Qwen2.5's template (tools in the system turn as ``<tools>`` JSON,
  calls as ``<tool_call>`` blocks, tool results as ``<tool_response>`` inside user turns);
- :data:`LLAMA3_TEMPLATE`: the Llama 3 header format (``<|begin_of_text|>``,
  ``<|start_header_id|>role<|end_header_id|>``, ``<|eot_id|>``) with Llama 3.1-style JSON calls
  and ``ipython`` results;
- :data:`THINK_TEMPLATE`: ChatML that drops ``<think>...</think>`` from every assistant turn but
  the last message, as reasoning models' templates do, so history is not append-only.

The vocabulary is deterministic for a given ``tokenizers`` version, which the golden files rely on.
"""

from __future__ import annotations

import functools
from typing import Any

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
PLAIN_ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<think>", "</think>"]
"""Added but not special (as in Qwen's tokenizers): decoding keeps them."""

QWEN25_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n\
You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) \
or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA3_TEMPLATE = """\
{{- bos_token }}
{%- if messages[0].role == 'system' %}
    {%- set system = messages[0].content | trim %}
    {%- set rest = messages[1:] %}
{%- else %}
    {%- set system = '' %}
    {%- set rest = messages %}
{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}
{%- if tools %}
    {{- 'Environment: ipython\\nYou have access to the following functions:\\n' }}
    {%- for tool in tools %}
        {{- tool | tojson + '\\n' }}
    {%- endfor %}
    {{- '\\n' }}
{%- endif %}
{{- system + '<|eot_id|>' }}
{%- for message in rest %}
    {%- if message.role == 'assistant' and message.tool_calls %}
        {%- set call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
        {{- '{"name": "' + call.name + '", "parameters": ' + call.arguments | tojson + '}' }}
        {{- '<|eot_id|>' }}
    {%- elif message.role == 'tool' %}
        {{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' + message.content | trim }}
        {{- '<|eot_id|>' }}
    {%- else %}
        {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' }}
        {{- message.content | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

THINK_TEMPLATE = """\
{%- for message in messages %}
    {%- set content = message.content %}
    {%- if message.role == 'assistant' and not loop.last and '</think>' in content %}
        {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

_CORPUS = """\
You are a helpful assistant. You are a software engineer working in a repository.
List the files in the repository. Show me the README and fix the failing test.
The repository has a README and a src directory. The tests pass now.
README.md src tests # demo hello world
$ ls $ cat README.md $ git status $ python -m pytest -q
```bash
ls
```
I should list the files first. Let me read the README. Now I know the layout.
Run one command in a bash shell and return its output. The command to run.
{"name": "bash", "arguments": {"command": "ls"}}
{"type": "function", "function": {"name": "bash", "description": "Run one command", "parameters":
{"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
Your reply had no valid tool call. Reply with exactly one function call.
system user assistant tool ipython Environment: ipython
You have access to the following functions: parameters
# Tools You may call one or more functions to assist with the user query.
You are provided with function signatures within <tools></tools> XML tags:
For each function call, return a json object with function name and arguments within XML tags
<tool_response> </tool_response> <function-name> <args-json-object>
"""


@functools.cache
def _core() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    return core.to_str()


def _tokenizer(template: str, eos: str, bos: str | None = None) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_core()),
        eos_token=eos,
        bos_token=bos,
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    tokenizer.add_tokens(PLAIN_ADDED_TOKENS)
    tokenizer.chat_template = template
    return tokenizer


def qwen25_tokenizer() -> Any:
    """Qwen2.5's chat template with tools; turns end with ``<|im_end|>`` (its eos)."""
    return _tokenizer(QWEN25_TEMPLATE, eos="<|im_end|>")


def llama3_tokenizer() -> Any:
    """The Llama 3 header format; turns end with ``<|eot_id|>`` (its eos)."""
    return _tokenizer(LLAMA3_TEMPLATE, eos="<|eot_id|>", bos="<|begin_of_text|>")


def think_tokenizer() -> Any:
    """ChatML whose template strips ``<think>`` blocks from earlier assistant turns."""
    return _tokenizer(THINK_TEMPLATE, eos="<|im_end|>")


def no_template_tokenizer() -> Any:
    """The same vocabulary with no chat template at all."""
    tokenizer = _tokenizer("", eos="<|im_end|>")
    tokenizer.chat_template = None
    return tokenizer
