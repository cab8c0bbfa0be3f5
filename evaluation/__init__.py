"""Evaluation: sonotypes scored against annotations, beside a log-mel yardstick.

For the CLI: `evaluate(out, name, annotation_files, EvaluationSettings(...))` →
`Evaluation` (scores table, scored windows, where they were written). The yardstick
uses torchaudio; nothing here is imported by the stages.
"""

from evaluation.evaluate import Evaluation, EvaluationSettings, evaluate, evaluation_dir

__all__ = ["Evaluation", "EvaluationSettings", "evaluate", "evaluation_dir"]
