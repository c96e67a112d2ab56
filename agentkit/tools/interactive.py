"""Spotting commands that would wait for a keyboard that does not exist.

An editor, a pager or a bare interpreter started in the agent's shell never returns: it sits until
the command timeout, and in a persistent session a bare interpreter would even swallow the next
commands as its own input. Refusing them up front, with a hint at the non-interactive way, costs
the model one turn instead of a timeout. The check is a best-effort scan of the command line, not a
shell parser: it looks at the first word of each simple command (after ``;``, ``&&``, ``|``...),
skips heredoc bodies, and lets an interpreter through when its input comes from a pipe or a
redirect.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

EDITOR_REASON = "is an interactive editor that waits for keystrokes"
EDITOR_HINT = (
    "View a file with `cat -n FILE` or `sed -n '10,40p' FILE`, and change it with a file-editing "
    "tool or a non-interactive command (`sed -i`, or `cat > FILE <<'EOF'` ... `EOF`)."
)
PAGER_REASON = "is a pager that waits for keystrokes"
PAGER_HINT = "Print the text directly with `cat`, `head` or `tail`, or pipe it into `head -n 50`."
MONITOR_REASON = "is a full-screen monitor that runs until a key is pressed"
MONITOR_HINT = "Take a snapshot instead: `ps aux` or `top -b -n 1`."
MANUAL_REASON = "opens a manual in a pager"
MANUAL_HINT = "Use `COMMAND --help` instead, piped into `head` when it is long."
INTERPRETER_REASON = "with no script or code waits at its prompt for typed input"
PYTHON_HINT = (
    "Run a script file (`python script.py`), pass code inline (`python -c '...'`), or feed it a "
    "heredoc (`python - <<'EOF'` ... `EOF`)."
)
INTERPRETER_HINT = (
    "Give it a script file or inline code (`-c` / `-e`), or feed it input through a pipe or a "
    "heredoc."
)
GIT_COMMIT_REASON = "without a message opens an editor for the commit message"
GIT_COMMIT_HINT = 'Give the message inline: `git commit -m "message"`.'
GIT_REBASE_REASON = "opens an editor for the list of commits"
GIT_REBASE_HINT = "Run the rebase without -i, or use `git cherry-pick` / `git reset`."
GIT_ADD_REASON = "asks about each change interactively"
GIT_ADD_HINT = "Name what to stage instead: `git add PATH`."

_EDITORS = frozenset(
    {"vi", "vim", "nvim", "view", "vimdiff", "nano", "pico", "emacs", "joe", "micro"}
)
_EDITOR_BATCH_FLAGS = frozenset({"--batch", "-batch", "-es", "-Es", "--headless"})
_PAGERS = frozenset({"less", "more", "most"})
_MONITORS = frozenset({"top", "htop", "btop", "atop", "iotop", "nmon"})
_MANUALS = frozenset({"man", "info"})
_INTERPRETER = re.compile(
    r"^(?:python[\d.]*|ipython3?|bash|sh|zsh|dash|ksh|node|nodejs|irb|ruby|perl)$"
)
_CODE_FLAGS = frozenset({"-c", "-m", "-e", "-E", "-p", "--eval", "--print", "--command"})
_STDIN_FLAGS = frozenset({"-", "-s"})
_WRAPPERS = frozenset({"sudo", "nohup", "time", "command", "exec", "builtin", "nice"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_EDITOR_VARIABLES = ("GIT_EDITOR=", "EDITOR=", "VISUAL=", "GIT_SEQUENCE_EDITOR=")
_HEREDOC = re.compile(r"(?<!<)<<(?P<dash>-?)[ \t]*(?P<quote>['\"]?)(?P<word>[\w.-]+)(?P=quote)")
_PUNCTUATION = set("();<>|&")


@dataclass(frozen=True)
class Refusal:
    """Why a command is refused: the program, what it would do, and what to do instead."""

    program: str
    reason: str
    hint: str


def _program_names() -> re.Pattern[str]:
    names = sorted(_EDITORS | _PAGERS | _MONITORS | _MANUALS | {"git"}, key=len, reverse=True)
    interpreters = _INTERPRETER.pattern.removeprefix("^(?:").removesuffix(")$")
    return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + "|" + interpreters + r")\b")


_MAY_REFUSE = _program_names()
"""Any name :func:`_check` could refuse, as a word. Tokenising a command costs tens of
microseconds on every step; most commands (``ls``, ``grep``, ``sed``, ``cat``) name none of these
programs, and searching the text for them first settles those in about a microsecond."""
_QUOTING = str.maketrans("", "", "'\"\\")


def find_interactive(command: str) -> Refusal | None:
    """The first interactive program ``command`` would start, or ``None``."""
    # A program word is contiguous in the text once quotes and backslashes are dropped
    # (`v'i'm` is `vim` to the shell), so no match here means the full scan finds nothing.
    if not _MAY_REFUSE.search(command.translate(_QUOTING)):
        return None
    for words, fed in _simple_commands(command):
        refusal = _check(words, fed)
        if refusal is not None:
            return refusal
    return None


def _strip_heredocs(command: str) -> str:
    """Drop heredoc bodies: they are data, and a line like ``vim is great`` in one is no command."""
    kept: list[str] = []
    waiting: list[tuple[str, bool]] = []
    for line in command.split("\n"):
        if waiting:
            word, dash = waiting[0]
            if (line.lstrip("\t") if dash else line) == word:
                waiting.pop(0)
            continue
        kept.append(line)
        waiting.extend((m.group("word"), m.group("dash") == "-") for m in _HEREDOC.finditer(line))
    return "\n".join(kept)


def _simple_commands(command: str) -> list[tuple[list[str], bool]]:
    """Each simple command's words (redirections removed) and whether its stdin is fed by a pipe
    or a redirect. An unparsable line yields nothing: the shell will report it better."""
    text = _strip_heredocs(command).replace("\\\n", " ").replace("\n", " ; ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return []
    commands: list[tuple[list[str], bool]] = []
    words: list[str] = []
    fed = False
    skip_target = False
    for token in tokens:
        is_operator = bool(token) and set(token) <= _PUNCTUATION
        if skip_target and not is_operator:
            skip_target = False
            continue
        if is_operator and ("<" in token or ">" in token):
            fed = fed or "<" in token
            skip_target = True
            continue
        if is_operator:
            if words:
                commands.append((words, fed))
            words = []
            fed = token in ("|", "|&")
            continue
        words.append(token)
    if words:
        commands.append((words, fed))
    return commands


def _check(words: list[str], fed: bool) -> Refusal | None:
    editor_variable = any(word.startswith(_EDITOR_VARIABLES) for word in words)
    words = _unwrap(words)
    if not words:
        return None
    program = os.path.basename(words[0])
    args = words[1:]
    if program in _EDITORS and not _EDITOR_BATCH_FLAGS.intersection(args):
        return Refusal(program, EDITOR_REASON, EDITOR_HINT)
    if program in _PAGERS:
        return Refusal(program, PAGER_REASON, PAGER_HINT)
    if program in _MONITORS and not (program == "top" and _has_short_flag(args, "b")):
        return Refusal(program, MONITOR_REASON, MONITOR_HINT)
    if program in _MANUALS:
        return Refusal(program, MANUAL_REASON, MANUAL_HINT)
    if _INTERPRETER.match(program) and not fed and _waits_at_prompt(args):
        hint = PYTHON_HINT if "python" in program else INTERPRETER_HINT
        return Refusal(program, INTERPRETER_REASON, hint)
    if program == "git" and not editor_variable:
        return _check_git(args)
    return None


def _unwrap(words: list[str]) -> list[str]:
    """Skip variable assignments and wrappers (``sudo``, ``env``, ``timeout 60``) before the
    program that actually runs."""
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word in _WRAPPERS:
            index += 1
        elif word == "env":
            index += 1
            while index < len(words) and (
                _ASSIGNMENT.match(words[index]) or words[index].startswith("-")
            ):
                index += 1
        elif word == "timeout":
            index += 1
            while index < len(words) and words[index].startswith("-"):
                index += 1
            index += 1  # the duration
        else:
            break
    return words[index:]


def _waits_at_prompt(args: list[str]) -> bool:
    """An interpreter opens a prompt with no script and no inline code, or with ``-i``."""
    if "-i" in args:
        return True
    for arg in args:
        if arg in _CODE_FLAGS or arg.startswith("--eval="):
            return False
        if arg in _STDIN_FLAGS:
            return True
        if not arg.startswith("-"):
            return False  # a script path
    return True


def _has_short_flag(args: list[str], letter: str) -> bool:
    return any(a.startswith("-") and not a.startswith("--") and letter in a[1:] for a in args)


def _check_git(args: list[str]) -> Refusal | None:
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    if index >= len(args):
        return None
    sub, rest = args[index], args[index + 1 :]
    if sub == "commit":
        has_message = (
            _has_short_flag(rest, "m")
            or _has_short_flag(rest, "F")
            or any(
                a.startswith(("--message", "--file", "--reuse-message", "--no-edit", "--fixup"))
                or a in ("-C",)
                for a in rest
            )
        )
        if not has_message:
            return Refusal("git commit", GIT_COMMIT_REASON, GIT_COMMIT_HINT)
    if sub == "rebase" and ("-i" in rest or "--interactive" in rest):
        return Refusal("git rebase -i", GIT_REBASE_REASON, GIT_REBASE_HINT)
    if sub == "add" and any(a in ("-p", "--patch", "-i", "--interactive") for a in rest):
        return Refusal("git add -p", GIT_ADD_REASON, GIT_ADD_HINT)
    return None
