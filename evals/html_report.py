"""A run as one static, self-contained HTML page: the summary table, then per task every step
(thought, action, observation), the diff and the test log.

The page must open anywhere (mailed, attached to an issue, served from a bucket), so it loads
nothing: styles and the one small script are inline. Every text from the run folder is
HTML-escaped after control bytes are made visible, because trajectories hold whatever models and
programs printed, ``<script>`` included. As a second wall, a Content-Security-Policy allows no
script but the page's own (by hash) and no request at all: a slip in escaping is blocked, and
shows up as a console error, which the browser test fails on.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from pathlib import Path

from agentkit.evals.inspector import RunView, StepView, TaskView, clip, printable
from agentkit.types import write_text_atomic

TEXT_LINES, TEXT_CHARS = 2_000, 100_000
"""The most of one thought, action or observation a page holds (head and tail are kept)."""
LOG_LINES, LOG_CHARS = 20_000, 1_000_000
"""The most of a test log, diff or error log a page holds."""

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#222}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-word;
 margin:.3em 0;font:12.5px/1.4 ui-monospace,monospace}
table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right}.resolved{color:#1a7f37}.unresolved{color:#9a6700}.error{color:#cf222e}
.unfinished{color:#777}.ungraded{color:#0a7d8c}.task{border-top:3px solid #ccc;margin-top:2em}.notes{color:#9a6700}
.step{border-left:3px solid #8ab;padding-left:.8em;margin:1em 0}.label{font-weight:600;color:#555}
.format-error{color:#cf222e}.meta,.timings{color:#666;font-size:12px}.add{color:#1a7f37}
.del{color:#cf222e}.hunk{color:#0969da}.filters button{margin-right:.3em}.hidden{display:none}
"""

_JS = """
document.querySelectorAll('.filters button').forEach(function (button) {
  button.addEventListener('click', function () {
    var status = button.getAttribute('data-filter');
    document.querySelectorAll('[data-status]').forEach(function (element) {
      var shown = status === 'all' || element.getAttribute('data-status') === status;
      element.classList.toggle('hidden', !shown);
    });
  });
});
"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    + "'"
)


def write_html(view: RunView, path: Path) -> None:
    """Write the page for ``view`` to ``path`` (atomically)."""
    write_text_atomic(path, render_html(view))


def render_html(view: RunView) -> str:
    title = f"agentkit run {view.run_id}"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_CSS}</style></head>',
        f"<body><h1>{_e(title)}</h1><p class=meta>{_e(str(view.root))}</p>",
        *(f"<p class=notes>{_e(note)}</p>" for note in view.notes),
        _summary(view),
        *(_task(task, number) for number, task in enumerate(view.tasks)),
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


def _e(text: str) -> str:
    return escape(printable(text), quote=True)


def _pre(text: str, lines: int = TEXT_LINES, chars: int = TEXT_CHARS) -> str:
    return f"<pre>{escape(clip(printable(text), lines, chars))}</pre>"


def _summary(view: RunView) -> str:
    t = view.totals
    cells = [
        ("tasks", t.tasks),
        ("attempts", t.attempts),
        ("resolved", t.resolved),
        ("unresolved", t.unresolved),
        ("errors", t.errors),
        ("ungraded", t.ungraded),
        ("unfinished", t.unfinished),
        ("steps", t.steps),
    ]
    totals = "".join(f'<td class=num data-total="{k}">{v}</td>' for k, v in cells)
    head = "".join(f"<th>{k}</th>" for k, _ in cells)
    rows = "".join(
        f'<tr data-status="{task.status}"><td><a href="#task-{n}">{_e(task.label)}</a></td>'
        f"<td>{_e(task.exit_status or '-')}</td><td class=num>{task.step_count}</td>"
        f'<td class="{task.status}">{task.status}</td><td class=num>${task.cost:.4f}</td>'
        f"<td>{_e(task.error or '')}</td></tr>"
        for n, task in enumerate(view.tasks)
    )
    buttons = "".join(
        f'<button type=button data-filter="{s}">{s}</button>'
        for s in ("all", "resolved", "unresolved", "error", "ungraded", "unfinished")
    )
    return (
        f"<section id=summary><h2>Summary</h2><table class=totals><tr>{head}<th>cost</th></tr>"
        f'<tr>{totals}<td class=num data-total="cost">${t.cost:.4f}</td></tr></table>'
        f"<p class=filters>Show: {buttons}</p><table class=tasks><tr><th>instance</th>"
        f"<th>exit status</th><th>steps</th><th>result</th><th>cost</th><th>error</th></tr>"
        f"{rows}</table></section>"
    )


def _task(task: TaskView, number: int) -> str:
    parts = [
        f'<section class=task id="task-{number}" data-status="{task.status}" '
        f'data-instance="{_e(task.instance_id)}" data-attempt="{task.attempt}" '
        f'data-steps="{task.step_count}">',
        f'<h2>{_e(task.label)} <span class="{task.status}">{task.status}</span></h2>',
        f"<p class=meta>exit status {_e(task.exit_status or '-')} · {task.step_count} steps · "
        f"${task.cost:.4f} · {task.wall_time_s:.1f} s · {_e(str(task.path))}</p>",
    ]
    if task.exit_message:
        parts.append(f"<p class=meta>{_e(task.exit_message)}</p>")
    if task.error:
        parts.append(f"<p class=error>error: {_e(task.error)}</p>")
    parts += [f"<p class=notes>note: {_e(note)}</p>" for note in task.notes]
    if task.prompt:
        messages = "".join(
            f"<p class=label>{_e(role)}</p>{_pre(content)}" for role, content in task.prompt
        )
        parts.append(f"<details class=prompt><summary>Prompt</summary>{messages}</details>")
    if task.steps is not None:
        parts.append("<ol class=steps>" + "".join(_step(s) for s in task.steps) + "</ol>")
    parts.append("<h3>Diff</h3>" + _diff(task.patch))
    parts.append("<h3>Tests</h3>" + _verdict(task))
    if task.test_output is not None:
        lines = task.test_output.count("\n") + 1
        parts.append(
            f"<details class=test-log><summary>Test log ({lines} lines)</summary>"
            f"{_pre(task.test_output, LOG_LINES, LOG_CHARS)}</details>"
        )
    if task.error_log is not None:
        parts.append(
            "<details class=error-log><summary>Error log</summary>"
            f"{_pre(task.error_log, LOG_LINES, LOG_CHARS)}</details>"
        )
    return "\n".join(parts) + "</section>"


def _step(step: StepView) -> str:
    parts = [f'<li class=step data-step="{step.index}" value="{step.index + 1}">']
    if step.thought:
        parts.append(f"<div class=thought><p class=label>Thought</p>{_pre(step.thought)}</div>")
    if step.action is not None:
        parts.append(
            f"<div class=action><p class=label>Action: {_e(step.action_name or '')}</p>"
            f"{_pre(step.action)}</div>"
        )
    if step.format_error:
        parts.append(
            "<div class=format-error><p class=label>Format error (not run)</p>"
            f"{_pre(step.format_error)}</div>"
        )
    if step.observation is not None:
        flags = [f"exit {step.exit_code}" if step.exit_code is not None else "no exit code"]
        flags += ["timed out"] * step.timed_out + ["truncated"] * step.truncated
        parts.append(
            f"<div class=observation><p class=label>Observation ({', '.join(flags)})</p>"
            f"{_pre(step.observation)}</div>"
        )
    tokens = f" · {step.prompt_tokens}+{step.completion_tokens} tokens"
    parts.append(
        f"<p class=timings>model {step.model_s:.2f} s · action {step.action_s:.2f} s"
        f"{tokens if step.prompt_tokens or step.completion_tokens else ''}"
        f"{f' · ${step.cost:.4f}' if step.cost else ''}</p></li>"
    )
    return "".join(parts)


def _diff(patch: str | None) -> str:
    if not patch or not patch.strip():
        return "<p class=meta>(no changes submitted)</p>"
    lines = []
    for line in clip(printable(patch), LOG_LINES, LOG_CHARS).split("\n"):
        css = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else ""
        )
        lines.append(f'<span class="{css}">{escape(line)}</span>' if css else escape(line))
    return "<pre class=diff>" + "\n".join(lines) + "</pre>"


def _verdict(task: TaskView) -> str:
    verdict = task.verdict
    if verdict is None:
        return "<p class=meta>not graded</p>"
    word = ("resolved", "RESOLVED") if verdict.resolved else ("unresolved", "NOT RESOLVED")
    parts = [f'<p class=verdict><span class="{word[0]}">{word[1]}</span>']
    if verdict.patch_applied is False:
        parts.append(' · <span class="error">the patch did not apply</span>')
    for category, passed in verdict.passed.items():
        total = passed + len(verdict.failing.get(category, []))
        if total:
            parts.append(f" · {_e(category)} {passed}/{total} passed")
    parts.append("</p>")
    failing = [(c, test) for c, tests in verdict.failing.items() for test in tests]
    if failing:
        items = "".join(f"<li>{_e(test)} ({_e(c)})</li>" for c, test in failing)
        parts.append(f"<ul class=failing>{items}</ul>")
    return "".join(parts)
