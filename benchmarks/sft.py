"""SFT tokens/s: agentkit's trainer against TRL's ``SFTTrainer`` and a plain torch loop.

All three train the same tiny Qwen2 chat model (built locally, float32, CPU) from the same
initial weights on the same samples — synthetic tool-calling chats, loss on the assistant replies
only — in the same micro-batches of the same order (agentkit's length-grouped plan, handed to the
others), with the same optimizer (AdamW, constant learning rate, gradient clipping at 1.0):

- **agentkit**: ``train_sft`` (log-probs of trained tokens only, chunked LM head, metrics and a
  checkpoint; its progress bar off);
- **TRL**: ``trl.SFTTrainer`` on a pre-tokenized dataset (``input_ids`` + ``assistant_masks``,
  so its labels mask the same tokens), with a sequential sampler so it sees the batches in the
  same order, logging every step;
- **plain loop**: ``model(input_ids, attention_mask, labels).loss``, backward, clip, step, on
  batches collated before the clock starts — the limit a trainer's bookkeeping can approach.

Throughput counts the real (non-padding) tokens of the epoch over the time from the first step
to the end of the last, setup and saving excluded. Rounds alternate the order of the three; the
table shows medians. The losses (final step and mean over steps) must agree: exactly the same
at the first step up to rounding, and within 0.5% at every later step.

    python benchmarks/sft.py [--samples 96] [--batch-size 4] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from agentkit.backends.tiny_model import build_tiny_chat_model, tool_call_samples
from agentkit.training.batching import collate, fit_to_length
from agentkit.training.samples import TokenSample
from agentkit.training.trainer import SFTConfig, plan_epoch, train_sft

LEARNING_RATE = 1e-3
MAX_GRAD_NORM = 1.0


class Run:
    def __init__(self, seconds: float, tokens: int, losses: list[float]) -> None:
        self.seconds, self.tokens, self.losses = seconds, tokens, losses

    @property
    def speed(self) -> float:
        return self.tokens / self.seconds


def the_plan(samples: list[TokenSample], config: SFTConfig) -> list[list[int]]:
    """The micro-batches (sample indices) agentkit's trainer takes, in its order."""
    fitted = fit_to_length(
        [s.input_ids for s in samples], [s.loss_mask for s in samples], config.max_length
    )
    assert len(fitted.input_ids) == len(samples), "every sample must be kept as it is"
    steps = plan_epoch(fitted, config, 0)
    batches = [[row[0] for row in batch] for step in steps for batch in step]
    sizes = {len(b) for b in batches}
    assert sizes == {config.micro_batch_size}, f"uneven micro-batches {sizes}: change --samples"
    return batches


def run_agentkit(samples: list[TokenSample], config: SFTConfig, scratch: Path) -> Run:
    config = config.model_copy(update={"output_dir": str(scratch / "agentkit")})
    result = train_sft(samples, config, progress=False)
    return Run(result.train_seconds, result.tokens, result.losses)


def run_plain(
    samples: list[TokenSample], model_dir: Path, plan: list[list[int]], pad_id: int
) -> Run:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=True)
    ids = [s.input_ids for s in samples]
    masks = [s.loss_mask for s in samples]
    batches = []
    for batch in plan:
        collated = collate([[i] for i in batch], ids, masks, pad_id=pad_id, packed=False)
        labels = torch.full_like(collated.input_ids, -100)
        labels.view(-1)[collated.target_index + 1] = collated.target_ids
        attention = collated.attention_mask
        if attention is None:
            attention = torch.ones_like(collated.input_ids)
        batches.append((collated.input_ids, attention, labels, collated.tokens))
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    for input_ids, attention, labels, count in batches:
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += count
    return Run(time.perf_counter() - start, tokens, losses)


def run_trl(
    samples: list[TokenSample], model_dir: Path, plan: list[list[int]], scratch: Path, seed: int
) -> Run:
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer

    order = [i for batch in plan for i in batch]
    dataset = Dataset.from_dict(
        {
            "input_ids": [samples[i].input_ids for i in order],
            "assistant_masks": [samples[i].loss_mask for i in order],
        }
    )

    class InPlanOrder(SFTTrainer):  # type: ignore[misc]
        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
            return SequentialSampler(self.train_dataset)

    class Clock(TrainerCallback):  # type: ignore[misc]
        began = ended = 0.0
        losses: list[float] = []

        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            Clock.began = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            Clock.ended = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                Clock.losses.append(float(logs["loss"]))

    args = TRLConfig(
        output_dir=str(scratch / "trl"), per_device_train_batch_size=len(plan[0]),
        gradient_accumulation_steps=1, num_train_epochs=1, learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=MAX_GRAD_NORM, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, bf16=False, fp16=False, seed=seed, dataloader_num_workers=0,
        max_length=None, packing=False, padding_free=False, disable_tqdm=True,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = InPlanOrder(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        callbacks=[Clock()],
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # it prints every step's log dict
    Clock.losses = []
    trainer.train()
    tokens = sum(len(samples[i].input_ids) for i in order)
    return Run(Clock.ended - Clock.began, tokens, list(Clock.losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="default: build the tiny model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # renamed arguments inside TRL

    with tempfile.TemporaryDirectory(prefix="agentkit-bench-sft-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model or build_tiny_chat_model(scratch / "tiny")
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # As agentkit's trainer reads them (tokens after the last trained one cut), so that all
        # three read exactly the same tokens.
        raw = tool_call_samples(tokenizer, count=args.samples, seed=args.seed)
        fitted = fit_to_length([s.input_ids for s in raw], [s.loss_mask for s in raw], 4096)
        samples = [
            s.model_copy(update={"input_ids": ids, "loss_mask": mask})
            for s, ids, mask in zip(raw, fitted.input_ids, fitted.loss_masks, strict=True)
        ]
        config = SFTConfig(
            model_path=str(model_dir), output_dir=str(scratch / "agentkit"),
            learning_rate=LEARNING_RATE, max_grad_norm=MAX_GRAD_NORM,
            micro_batch_size=args.batch_size, max_length=4096, seed=args.seed, plot=False,
            dtype="float32", device="cpu",
        )  # fmt: skip
        plan = the_plan(samples, config)
        pad_id = AutoConfig.from_pretrained(model_dir).pad_token_id

        runs: dict[str, list[Run]] = {"agentkit": [], "trl": [], "plain": []}
        names = list(runs)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                round_dir = scratch / f"{name}-{round_number}"
                round_dir.mkdir()
                if name == "agentkit":
                    runs[name].append(run_agentkit(samples, config, round_dir))
                elif name == "trl":
                    runs[name].append(run_trl(samples, model_dir, plan, round_dir, args.seed))
                else:
                    runs[name].append(run_plain(samples, model_dir, plan, pad_id))

    speed = {name: statistics.median(r.speed for r in rs) for name, rs in runs.items()}
    final = {name: rs[-1].losses[-1] for name, rs in runs.items()}
    mean = {name: statistics.fmean(rs[-1].losses) for name, rs in runs.items()}
    tokens = runs["plain"][0].tokens
    trained = sum(sum(s.loss_mask[1:]) for s in samples)
    print(
        f"{datetime.date.today().isoformat()}, {platform.node()} ({os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, {platform.system()} {platform.release()}), "
        f"torch {torch.__version__}; {len(samples)} samples, {tokens} tokens "
        f"({trained} trained), {len(plan)} steps of {args.batch_size} sequences, float32 CPU, "
        f"median of {args.rounds} rounds\n"
    )
    print("| row | tokens/s | vs TRL | vs plain loop | final loss | mean loss |")
    print("|---|---:|---:|---:|---:|---:|")
    labels = {
        "agentkit": "agentkit train_sft",
        "trl": "TRL SFTTrainer",
        "plain": "plain torch loop (limit)",
    }
    for name, label in labels.items():
        print(
            f"| {label} | {speed[name]:,.0f} | {speed[name] / speed['trl']:.2f}× | "
            f"{speed[name] / speed['plain']:.2f}× | {final[name]:.4f} | {mean[name]:.4f} |"
        )
    ranges = ", ".join(
        f"{name} {min(r.speed for r in rs):,.0f}–{max(r.speed for r in rs):,.0f}"
        for name, rs in runs.items()
    )
    print(f"\nRange over rounds (tokens/s): {ranges}")
    pairs = [
        (a, b)
        for other in ("trl", "agentkit")
        for a, b in zip(runs[other][-1].losses, runs["plain"][-1].losses, strict=True)
    ]
    first = max(abs(a - b) for a, b in pairs[:: len(plan)])
    worst = max(abs(a - b) / abs(b) for a, b in pairs)
    print(
        f"Losses against the plain loop: step 1 within {first:.1e}, every step within "
        f"{worst:.1e} relative (rounding: sums taken in another order, amplified by each update)"
    )
    if first > 1e-4 or worst > 5e-3:
        raise SystemExit("the three trainers did not optimise the same loss")


if __name__ == "__main__":
    main()
