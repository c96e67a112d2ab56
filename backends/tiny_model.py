"""A tiny, locally built chat model for tests, docs and demos.

No model can be downloaded where agentkit is tested, yet the backends, the vLLM server manager and
the trainers must run against a real ``from_pretrained`` directory. :func:`build_tiny_chat_model`
makes one from nothing, deterministically: a byte-level BPE tokenizer trained on a small embedded
corpus, a randomly initialised two-layer Qwen2 causal LM (float32, safetensors) and a Qwen/hermes
style chat template that renders tools and ``<tool_call>`` blocks, so vLLM's ``hermes`` tool parser
and ``AutoTokenizer.apply_chat_template(..., tools=...)`` both work with it.

A random model never calls a tool. ``teach_tool_calls=True`` adds a short supervised fine-tune
(``agentkit.training``'s SFT trainer, loss on the assistant replies only) on synthetic
conversations whose assistant turns call a ``bash`` tool, after which greedy decoding reliably
emits ``<tool_call>{"name": "bash", "arguments": {...}}</tool_call>``: a cheap, honest way
to exercise tool-calling paths end to end and to show that training changes behaviour.

Builds are cached: a directory that already holds a complete build with the same parameters (a
marker file carrying a hash of them) is returned as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentkit.training.samples import TokenSample

BUILD_VERSION = 3
"""Bump when the build recipe changes so that cached builds are rebuilt."""

MARKER_FILE = "agentkit_tiny_model.json"
DEFAULT_TINY_MODEL_DIR = Path(
    os.environ.get("AGENTKIT_CACHE_DIR", Path.home() / ".cache" / "agentkit")
) / ("tiny-models/qwen2-tiny-v" + str(BUILD_VERSION))
"""Where the CLI and the docs put the plain tiny model unless told otherwise."""


def default_tiny_model_dir(*, teach_tool_calls: bool = False) -> Path:
    """The cache directory for each variant (they differ, so each has its own place)."""
    if teach_tool_calls:
        return DEFAULT_TINY_MODEL_DIR.with_name(DEFAULT_TINY_MODEL_DIR.name + "-tool-calls")
    return DEFAULT_TINY_MODEL_DIR


VOCAB_SIZE = 1024
"""Embedding rows: the tokenizer's ~1000 tokens padded to a round size."""
BPE_VOCAB = 1000
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOOL_TOKENS = ["<tool_call>", "</tool_call>"]

CHAT_TEMPLATE = (
    "{% set ns = namespace(system='', rest=messages) %}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set ns.system = messages[0].content %}{% set ns.rest = messages[1:] %}"
    "{% endif %}"
    "{% if ns.system or tools %}<|im_start|>system\n{{ ns.system }}"
    "{% if tools %}{% if ns.system %}{{ '\\n\\n' }}{% endif %}# Tools\n\n"
    "To use a tool, reply with a <tool_call></tool_call> block holding one JSON object with the "
    'keys "name" and "arguments". The tools are:'
    "{% for tool in tools %}{{ '\\n' }}{{ (tool.function if tool.function is defined else tool) | tojson }}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endif %}"
    "{% for message in ns.rest %}<|im_start|>{{ message.role }}\n"
    "{% if message.role == 'tool' %}<tool_response>\n{{ message.content }}\n</tool_response>"
    "{% else %}{% if message.content %}{{ message.content }}{% endif %}"
    "{% for call in message.tool_calls or [] %}"
    "{% set fn = call.function if call.function is defined else call %}"
    "{% if message.content or not loop.first %}{{ '\\n' }}{% endif %}"
    '<tool_call>{"name": {{ fn.name | tojson }}, "arguments": '
    "{% if fn.arguments is string %}{{ fn.arguments }}{% else %}{{ fn.arguments | tojson }}"
    "{% endif %}}</tool_call>"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen-style turns; tools in the system turn; calls as ``<tool_call>`` JSON blocks.

transformers renders templates with ``trim_blocks``, which drops a newline right after a block
tag, so such newlines are written as ``{{ '\\n' }}`` expressions."""

_CORPUS = """\
The quick brown fox jumps over the lazy dog. A software engineer reads the issue, finds the code,
writes a test that reproduces the bug, fixes the source and runs the tests again.
You are a helpful assistant. Please run the command and tell me what it prints.
What files are in this repository? Show me the README. Which tests fail, and why?
The function returns None when the list is empty, but the caller expects an integer.
def add(a: int, b: int) -> int:
    return a + b

class Stack:
    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, item: int) -> None:
        self.items.append(item)

import os
import sys
from pathlib import Path

for i in range(10):
    print(i, file=sys.stderr)

if __name__ == "__main__":
    main()
$ ls -la
$ cat README.md
$ git status
$ git diff
$ python -m pytest tests/ -x -q
$ grep -rn "def main" src/
$ echo hello world
$ pwd
{"name": "bash", "arguments": {"command": "ls"}}
{"type": "object", "properties": {"command": {"type": "string", "description": "The command"}},
 "required": ["command"]}
Traceback (most recent call last):
  File "main.py", line 3, in <module>
ValueError: invalid literal for int() with base 10: 'abc'
<returncode>0</returncode>
<output>
</output>
Resolve the following issue in the repository. Reply with exactly one function call.
"""

_TOOL_SPEC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run one command in a bash shell and return its output.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command to run."}},
            "required": ["command"],
        },
    },
}
_COMMANDS = ["ls", "pwd", "git status", "cat README.md"]
_SYSTEMS = [
    "You are a helpful assistant.",
    "You are a software engineer working in a Linux shell on a code repository.",
    "",
]
_USERS = [
    "What files are in this repository?",
    "Please fix the failing test.",
    "Resolve the following issue in the repository: the function returns None.",
    "Show me the README.",
    "Which tests fail, and why?",
]
_OUTPUTS = ["README.md\nsrc\ntests", "/work/repo", "On branch main\nnothing to commit", "hello"]


def _params_hash(seed: int, teach_tool_calls: bool) -> str:
    blob = json.dumps(
        {"version": BUILD_VERSION, "seed": seed, "teach_tool_calls": teach_tool_calls},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _is_complete(out_dir: Path, digest: str) -> bool:
    marker = out_dir / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("hash") == digest


def build_tiny_chat_model(
    out_dir: str | Path, *, seed: int = 0, teach_tool_calls: bool = False
) -> Path:
    """Build (or reuse) the tiny chat model in ``out_dir`` and return its path.

    The build runs offline and is deterministic for a given ``seed``; it is written to a temporary
    sibling directory and moved into place, so an interrupted build never looks complete.
    """
    out = Path(out_dir).expanduser().resolve()
    digest = _params_hash(seed, teach_tool_calls)
    if _is_complete(out, digest):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _build(staging, seed=seed, teach_tool_calls=teach_tool_calls)
        marker = {"hash": digest, "seed": seed, "teach_tool_calls": teach_tool_calls}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _build(out: Path, *, seed: int, teach_tool_calls: bool) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = _train_tokenizer()
    torch.manual_seed(seed)
    shape: dict[str, Any] = dict(  # a dict: the stubs do not list every accepted keyword
        vocab_size=VOCAB_SIZE,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        dtype="float32",
    )
    model = Qwen2ForCausalLM(Qwen2Config(**shape))
    if not teach_tool_calls:
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        return
    with tempfile.TemporaryDirectory(prefix=".teach-", dir=out.parent) as scratch:
        base = Path(scratch) / "base"
        model.save_pretrained(base, safe_serialization=True)
        tokenizer.save_pretrained(base)
        _teach_tool_calls(base, tokenizer, out, seed=seed)


def _train_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    core = Tokenizer(models.BPE())
    # The same normalizer and pre-tokenizer as transformers' Qwen2Tokenizer, which AutoTokenizer
    # (and vLLM) build for a qwen2 model from vocab and merges: every loader must tokenize alike.
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [
        _CORPUS,
        __doc__ or "",
        CHAT_TEMPLATE,
        json.dumps(_TOOL_SPEC["function"]),
        " ".join(str(n) for n in range(256)),
        *_SYSTEMS,
        *_USERS,
        *_OUTPUTS,
    ]
    core.train_from_iterator(corpus * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=2048,
    )
    tokenizer.add_tokens(TOOL_TOKENS)  # ordinary tokens: decoding keeps them
    tokenizer.chat_template = CHAT_TEMPLATE
    if len(tokenizer) > VOCAB_SIZE:
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, more than {VOCAB_SIZE}")
    return tokenizer


def _conversation(rng: random.Random) -> list[dict[str, Any]]:
    """A short synthetic chat whose every assistant turn calls ``bash``."""
    messages: list[dict[str, Any]] = []
    system = rng.choice(_SYSTEMS) + _filler(rng)
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": rng.choice(_USERS) + _filler(rng)})
    for turn in range(rng.randint(1, 3)):
        call = {"name": "bash", "arguments": {"command": rng.choice(_COMMANDS)}}
        messages.append(
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", **call}]}
        )
        messages.append({"role": "tool", "content": rng.choice(_OUTPUTS), "name": "bash"})
        del turn
    messages.pop()  # end on the assistant's call
    return messages


def _filler(rng: random.Random) -> str:
    """Often a random slice of the corpus, so replies are learnt after prompts of many lengths
    (agent prompts run to several hundred tokens)."""
    if rng.random() < 0.3:
        return ""
    text = _CORPUS + (__doc__ or "")
    start = rng.randrange(len(text) // 2)
    return "\n\n" + text[start : start + rng.randrange(100, 1200)]


def _assistant_mask(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Token ids of the whole chat and, per token, 1 where it belongs to an assistant reply.

    Each reply spans from the end of the prompt that precedes it (with the generation prompt) to
    the end of the chat rendered up to and including it, so the mask follows the template exactly.
    """
    tools = [_TOOL_SPEC]
    ids: list[int] = _ids(tokenizer.apply_chat_template(messages, tools=tools, tokenize=True))
    mask = [0] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(
            _ids(
                tokenizer.apply_chat_template(
                    messages[:i], tools=tools, tokenize=True, add_generation_prompt=True
                )
            )
        )
        end = len(_ids(tokenizer.apply_chat_template(messages[: i + 1], tools=tools)))
        end -= 1  # the newline after <|im_end|> is template, not reply
        for j in range(start, end):
            mask[j] = 1
    return ids, mask


def _ids(encoded: Any) -> list[int]:
    """``apply_chat_template`` returns ids or a BatchEncoding depending on the version."""
    if isinstance(encoded, list):
        return [int(t) for t in encoded]
    return [int(t) for t in encoded["input_ids"]]


def tool_call_samples(tokenizer: Any, *, count: int = 48, seed: int = 0) -> list[TokenSample]:
    """Synthetic chats whose every assistant turn calls ``bash``, as training samples: token ids
    rendered with the chat template and a loss mask on the assistant replies only."""
    from agentkit.training.samples import TokenSample

    rng = random.Random(seed)
    chats = [_assistant_mask(tokenizer, _conversation(rng)) for _ in range(count)]
    return [
        TokenSample(task_id="tiny-tool-calls", trajectory_id=f"synthetic-{seed}-{n}",
                    source="template", input_ids=ids, loss_mask=mask)
        for n, (ids, mask) in enumerate(chats)
    ]  # fmt: skip


def _teach_tool_calls(
    base: Path, tokenizer: Any, out: Path, *, seed: int, steps: int = 120
) -> None:
    """Fine-tune the model saved in ``base`` with the SFT trainer and put the result in ``out``."""
    from agentkit.training.trainer import SFTConfig, train_sft

    config = SFTConfig(
        model_path=str(base),
        output_dir=str(base.parent / "sft"),
        learning_rate=3e-3,
        max_grad_norm=None,
        max_steps=steps,
        micro_batch_size=4,
        max_length=2048,
        seed=seed,
        dtype="float32",
        device="cpu",
        plot=False,
    )
    result = train_sft(tool_call_samples(tokenizer, seed=seed), config, progress=False)
    for item in result.final_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, out / item.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the tiny local chat model.")
    parser.add_argument(
        "out_dir", nargs="?", help=f"default: a directory under {DEFAULT_TINY_MODEL_DIR.parent}"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--teach-tool-calls",
        action="store_true",
        help="fine-tune briefly so that the model emits <tool_call> blocks",
    )
    args = parser.parse_args(argv)
    out_dir = args.out_dir or default_tiny_model_dir(teach_tool_calls=args.teach_tool_calls)
    path = build_tiny_chat_model(out_dir, seed=args.seed, teach_tool_calls=args.teach_tool_calls)
    print(path)


if __name__ == "__main__":
    main()
