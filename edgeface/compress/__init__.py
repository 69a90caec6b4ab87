"""Compression facade: each function turns a trained run into a new, fine-tuned run that records its parent.

    prune_run(RUN, sparsity=0.5)            magnitude pruning (tfmot), stripped after fine-tuning
    structured_prune_run(RUN, ratio=0.3)    removes whole filters/channels, rebuilds a slimmer dense model
    prune(RUN, method, **options)           either of the two by name (what `edgeface prune` calls)
    qat_run(RUN)                            quantization-aware training (prune-preserving for pruned parents)
    distill_run(TEACHER, backbone=...)      a new student trained on labels and the soft outputs of a teacher
                                            run (or the averaged outputs of several)

Each method's settings, defaults and allowed values are typed in edgeface.run.compression (None: its default).
Every method fine-tunes with the shared training loop, and every one can learn from teachers while it does
(`teacher=` a run or several, an ensemble): for the bundled model's QAT this beat labels alone on val
(BENCHMARKS.md section 5); for pruning it is offered the same way, not yet measured. Each method's plan (what to
build, which callbacks, how to finish) is made from the config's compression record alone, teachers included,
so a run started by any method resumes from its folder with nothing re-stated (`edgeface.jobs.resume_run`).

A facade over single-purpose modules: `methods` (these functions), `plans` (each method's plan and the run
through the shared loop), `lineage` (the child's config), `teachers`, `reports` (compression.json), and the
techniques themselves: `prune`, `structured`, `qat`, `distill`, `stats`.
"""
from edgeface.compress.lineage import derived_config
from edgeface.compress.methods import distill_run, prune, prune_run, qat_run, structured_prune_run

__all__ = ["prune", "prune_run", "structured_prune_run", "qat_run", "distill_run", "derived_config"]
