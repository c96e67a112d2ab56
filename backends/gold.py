"""The gold backend: replays a task's reference patch through the scaffold's own tools, then submits.

It is the SWE-bench "gold" sanity run: it proves the sandbox, the tools, the submission path and
the grader agree on a task, with no model involved. Its results are always labelled ``gold`` and
must never be reported as a model's.

How the patch is replayed depends on the scaffold's tools:

- With ``bash`` only: one action applies the whole patch with ``git apply``.
- With ``str_replace_editor`` too, the edits go through the editor, so a gold run tests the editor
  on real files. The backend sees no file, only the diff and the observations of its own actions,
  so the plan is built to end in the tree ``git apply`` gives, byte for byte:

  1. a ``bash`` probe prints the repository's absolute path (the editor takes absolute paths
     only) and, for each file to edit, how many of its lines end in CRLF;
  2. the sections the editor cannot express exactly (see :mod:`agentkit.backends.gold_diff`:
     deletions, renames, mode changes, binary and non-ASCII edits, and LF-only hunks in a file
     with CRLF lines, whose new text the editor would write with CRLF) go to one ``git apply``;
  3. each new file is one ``create``; each hunk of a changed file is one ``str_replace`` whose
     ``old_str`` is the hunk's pre-image and ``new_str`` its post-image, hunks in file order.
     A pre-image always occurs where the hunk applies (hunks never overlap), so when the editor
     finds it exactly once, that is the place; when it finds it twice or more it refuses and
     writes nothing. Each observation is read back: unless it holds the editor's own success
     line for that file, the rest of the patch (that file's remaining hunks, their line numbers
     moved past the applied ones, and every later file) goes to one ``git apply``;
  4. an action that a call format cannot carry exactly (checked by parsing what it renders)
     moves its file to step 2, and a probe that gives no path sends the whole patch there.

The run ends with a ``submit`` call when the scaffold has that tool, else with ``echo`` of the
submit sentinel. Every action is rendered in the scaffold's call format, so it travels through
exactly the parsing and execution path a model's replies would.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.backend import BackendError
from agentkit.backends.gold_diff import FileDiff, parse_patch
from agentkit.tools import CallFormat, Tool, ToolCallError
from agentkit.tools.editor import CREATED, DELETED, REPLACED
from agentkit.types import Completion, Message, SamplingParams, ToolCall, ToolSpec

GOLD_LABEL = "gold (reference patch replay, not a model)"
EDITOR = "str_replace_editor"
SUBMIT = "submit"

_WORKDIR_MARK = "AGENTKIT_GOLD_WORKDIR="
_CR_MARK = "AGENTKIT_GOLD_CR"
_WORKDIR_LINE = re.compile(re.escape(_WORKDIR_MARK) + r"(/[^\r\n]*)")
_CR_LINE = re.compile(re.escape(_CR_MARK) + r" (\d+) (\d+)\b")


@dataclass(frozen=True)
class _Action:
    call: ToolCall
    thought: str
    success: re.Pattern[str] | None = None
    """For an editor action: the line its observation holds when the edit was made."""


_Replay = Generator[_Action, str, None]


class GoldBackend:
    """Replies that replay ``patch`` (through ``str_replace_editor`` when the scaffold has it,
    else with ``git apply``), then submit. See the module docstring for the plan."""

    def __init__(
        self, patch: str, call_format: CallFormat, tools: list[Tool], submit_sentinel: str
    ) -> None:
        names = {tool.name for tool in tools}
        if "bash" not in names:
            raise BackendError(
                "The gold backend applies the patch with the 'bash' tool, and this scaffold has "
                f"none (tools: {', '.join(t.name for t in tools)})."
            )
        self.format = call_format
        self.tools = tools
        self.patch = patch
        self._files = parse_patch(patch) if EDITOR in names else None
        if SUBMIT in names:
            submit = ToolCall(name=SUBMIT, arguments={})
        else:
            submit = ToolCall(name="bash", arguments={"command": f"echo {submit_sentinel}"})
        self._submit = _Action(submit, "Submitting.")
        self._replay = self._plan()
        self._started = self._done = self._resubmitted = False
        self._count = 0

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        if self._done:
            if self._submit.call.name != SUBMIT or self._resubmitted:
                raise BackendError("The gold backend was asked for a reply after it submitted.")
            # A reviewing submit tool showed the diff instead of ending the run: confirm once.
            self._resubmitted = True
            self._count += 1
            call = self._submit.call.model_copy(update={"id": f"gold-{self._count}"})
            return self.format.render(call, self.tools, thought="The diff is right; submitting.")
        try:
            if self._started:
                action = self._replay.send(_last_observation(messages))
            else:
                self._started = True
                action = next(self._replay)
        except StopIteration:
            action = self._submit
            self._done = True
        self._count += 1
        call = action.call.model_copy(update={"id": f"gold-{self._count}"})
        return self.format.render(call, self.tools, thought=action.thought)

    def describe(self) -> dict[str, Any]:
        return {"type": "gold", "label": GOLD_LABEL}

    # -- the plan ---------------------------------------------------------------------------------

    def _plan(self) -> _Replay:
        files = self._files
        if files is None or not any(f.editable for f in files):
            yield _apply(self.patch, "Applying the reference patch.")
            return
        candidates = [(i, f) for i, f in enumerate(files) if f.kind == "modify"]
        seen = yield _Action(
            ToolCall(name="bash", arguments={"command": _probe_command(candidates)}),
            "Finding the repository's absolute path and the line endings of the files to edit.",
        )
        workdir, crlf = _read_probe(seen)
        if workdir is None:
            yield _apply(self.patch, "Applying the reference patch.")
            return
        edits: list[tuple[FileDiff, list[_Action]]] = []
        others: list[FileDiff] = []
        for index, file in enumerate(files):
            actions = self._editor_actions(file, index, workdir, crlf)
            if actions is None:
                others.append(file)
            else:
                edits.append((file, actions))
        if others:
            text = "".join(f.text for f in others)
            yield _apply(text, "Applying the parts of the patch the editor cannot express.")
        for position, (file, actions) in enumerate(edits):
            for hunk, action in enumerate(actions):
                seen = yield action
                if action.success is None or not action.success.search(seen):
                    rest = file.rest_from(hunk) + "".join(f.text for f, _ in edits[position + 1 :])
                    yield _apply(
                        rest, "The editor did not make that edit; applying the rest of the patch."
                    )
                    return

    def _editor_actions(
        self, file: FileDiff, index: int, workdir: str, crlf: dict[int, int]
    ) -> list[_Action] | None:
        """The editor actions that replay ``file`` exactly, or ``None`` when ``git apply`` must."""
        path = posixpath.join(workdir, file.path)
        if file.kind == "create":
            text = file.hunks[0].new_text if file.hunks else ""
            args = {"command": "create", "path": path, "file_text": text}
            actions = [_Action(_editor(args), f"Creating {file.path}.", _done(CREATED, path))]
        elif file.kind == "modify":
            # The editor writes a new_str without CR in CRLF where the file mostly has CRLF.
            lf_only = any("\n" in h.new_text and "\r" not in h.new_text for h in file.hunks)
            count = crlf.get(index)
            if count is None or (count > 0 and lf_only):
                return None
            actions = [
                _Action(
                    _editor(
                        {
                            "command": "str_replace",
                            "path": path,
                            "old_str": hunk.old_text,
                            "new_str": hunk.new_text,
                        }
                    ),
                    f"Hunk {number} of {len(file.hunks)} in {file.path}.",
                    _done(DELETED if not hunk.new_text else REPLACED, path),
                )
                for number, hunk in enumerate(file.hunks, 1)
            ]
        else:
            return None
        return actions if all(self._carried(a) for a in actions) else None

    def _carried(self, action: _Action) -> bool:
        """Whether the call format carries ``action`` exactly (it renders, and parses back to
        the same call)."""
        call = action.call
        try:
            reply = self.format.render(call, self.tools, thought=action.thought)
            parsed = self.format.parse(reply, self.tools)
        except (ToolCallError, ValueError):
            return False
        return parsed.call.name == call.name and parsed.call.arguments == call.arguments


def _editor(arguments: dict[str, str]) -> ToolCall:
    return ToolCall(name=EDITOR, arguments=arguments)


def _apply(patch: str, thought: str) -> _Action:
    return _Action(ToolCall(name="bash", arguments={"command": _apply_command(patch)}), thought)


def _apply_command(patch: str) -> str:
    delimiter = "AGENTKIT_GOLD_PATCH"
    while delimiter in patch:
        delimiter += "_"
    body = patch if patch.endswith("\n") else patch + "\n"
    return f"git apply --whitespace=nowarn - <<'{delimiter}'\n{body}{delimiter}"


def _probe_command(files: Sequence[tuple[int, FileDiff]]) -> str:
    """Prints the working directory, then ``MARK INDEX COUNT`` per file: its lines ending in CR
    (nothing for a file that cannot be read, so its line does not parse)."""
    lines = [f"printf '{_WORKDIR_MARK}%s\\n' \"$PWD\""]
    for index, file in files:
        count = f"$(LC_ALL=C grep -c $'\\r$' -- {shlex.quote(file.path)} 2>/dev/null)"
        lines.append(f"printf '{_CR_MARK} {index} %s\\n' \"{count}\"")
    return "\n".join(lines)


def _read_probe(text: str) -> tuple[str | None, dict[int, int]]:
    found = _WORKDIR_LINE.search(text)
    workdir = posixpath.normpath(found[1].rstrip()) if found else None
    return workdir, {int(m[1]): int(m[2]) for m in _CR_LINE.finditer(text)}


def _done(template: str, path: str) -> re.Pattern[str]:
    """The whole line an editor observation holds when ``template``'s command succeeded on
    ``path`` (numbers and line counts vary)."""
    shown = template.format(path=path, line="\0", lines="\1")
    pattern = re.escape(shown).replace("\0", r"\d+").replace("\1", r"[^\n]+")
    return re.compile(rf"^{pattern}$", re.MULTILINE)


def _last_observation(messages: list[Message]) -> str:
    """What followed the backend's last reply: the observation of its last action."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    return "\n".join(m.content for m in messages[last + 1 :])
