"""The builtin model's best recipe, as `bench_training` measured it, in one place: the demo, the admin's start
form and the bench train with it (the notebook's builtin branch too).

A SentencePiece vocabulary learned on the run's export (an example is ~60 tokens instead of ~178 bytes),
several examples packed per row (6 % padding instead of 77 %), 384-token rows (they keep dev-reasoning-v2's
longest, wide-number traces), and the optimizer settings the bench's levers were measured with. At 10 minutes
on a 2-core CPU it reached 83.5 % in distribution on eval-v1 (README, "Tests and benchmarks").
"""

BEST_DATASET = "dev-reasoning-v2"

BEST_BUILTIN = {
    "backend": "builtin",
    "model": "small",
    "tokenizer": "spm",
    "spm_vocab_size": 1024,
    "packing": True,
    "batch_size": 8,
    "learning_rate": 4e-3,
    "warmup_steps": 40,
    "schedule": "cosine",
    "weight_decay": 0.01,
    "clip_norm": 1.0,
    "max_seq_len": 384,
    "seed": 0,
}
