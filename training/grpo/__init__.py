"""GRPO (group relative policy optimisation) for the builtin model, starting from a trained run folder.

`config` (the validated GRPOConfig, the prompts and the step seeds: no JAX, so the web validates requests with
it), `loss` (the objective and its compiled programs) and `trainer` (the run itself).

Each step takes `prompts_per_step` prompts (order: a pure function of the prompts' hash, seed and epoch,
as in SFT), samples `group_size` completions per prompt with the KV-cache generator (seed: a pure function
of (seed, step)), scores them with the product's judges (training.rewards), and normalises each reward
within its group: A = (r - mean) / (std + 1e-6), and A = 0 for a group whose rewards are all equal.

The loss is over completion tokens only (the stop token included; prompt, left padding and the slots
after the stop are masked), averaged per sequence and then over sequences:

    -min(ratio·A, clip(ratio, 1 - epsilon, 1 + epsilon)·A) + beta·KL,   ratio = exp(logp - logp_old)

with the k3 estimator KL = exp(ref - logp) - (ref - logp) - 1 against the frozen starting weights. Token
log-probs come from one teacher-forced forward over [prompt + completion], laid out exactly as generation
lays out its buffer (training.generate), at the sampling temperature (top_p is not applied to them).
With `inner_updates` = 1 the ratio is exactly 1 (logp_old is logp without gradient); with more, every
inner update reuses the same samples and logp_old is taken once before the first.

Resume is exact for the reason SFT's is: a step's prompts and sampling seed depend only on (prompts,
seed, step), the model has no dropout, and params plus optimizer state come back bit for bit.
"""
