#!/usr/bin/env python3
"""bench/bench_lora_torch.py: the PyTorch side of bench/bench_lora.sh.

transformers (float32, eager) + PEFT LoRA with the same setup as
bench/bench_lora.c: B sequences of L seeded random ids, every position
scored, LoRA r / alpha 2r / dropout on all seven modules, AdamW; one untimed
warm-up step, then S timed steps of forward + backward + optimiser step.

usage: bench_lora_torch.py MODEL [--threads T] [--batch B] [--len L] [--r R]
       [--steps S] [--dropout P]
"""
import argparse
import resource
import time

import numpy as np
import torch
import transformers
import peft


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dropout", type=float, default=0.05)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    cfg = peft.LoraConfig(r=a.r, lora_alpha=2 * a.r, lora_dropout=a.dropout, bias="none",
                          task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                          "gate_proj", "up_proj", "down_proj"])
    pm = peft.get_peft_model(model, cfg)
    pm.train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4)
    lim = min(model.config.vocab_size, 2000)
    ids = torch.from_numpy(np.random.RandomState(12345).randint(0, lim, (a.batch, a.len)))
    first = last = None
    for st in range(a.steps + 1):
        if st == 1:
            t0 = time.perf_counter()
        out = pm(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in pm.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad()
        first = float(out.loss) if first is None else first
        last = float(out.loss)
    dt = time.perf_counter() - t0
    print("torch_version %s" % torch.__version__)
    print("train_tok_s %.1f" % (a.batch * a.len * a.steps / dt))
    print("step_s %.4f" % (dt / a.steps))
    print("loss_first %.6f\nloss_last %.6f" % (first, last))
    print("peak_rss_mb %.1f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


if __name__ == "__main__":
    main()
