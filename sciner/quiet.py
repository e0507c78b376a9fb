"""Known-harmless third-party log lines, dropped where they are logged (never a global level change).

Each rule names the logger a library logs to and a pattern of its message; a matching record below
the rule's level ceiling is dropped by a filter on that logger only, so every other message of the
same library still shows. ONNX Runtime's quantizer logs through the root logger (``logging.info``),
so its rule matches the source file instead of the logger name.

:func:`install` is idempotent; the CLI calls it when it sets up logging, ``bench/serve.py`` too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    logger: str  # the logger the library logs to ("" = root)
    pattern: str  # regular expression searched in the formatted message
    below: int = logging.WARNING + 1  # drop matching records of a lower level than this
    path: str = ""  # for root-logger records: a part of the source file's path


RULES: tuple[Rule, ...] = (
    # int8 export: ~50 lines of "Quantization parameters for tensor ... not specified" and friends
    Rule("", r".", below=logging.WARNING, path="onnxruntime/quantization"),
    Rule("", r"Please consider to run pre-processing before quantization", path="onnxruntime/quantization"),
    # ORT's transformer graph optimizer (fp32 export): "Fused Attention: 6", "Removed 131 nodes", ...
    *(
        Rule(name, r".", below=logging.WARNING)
        for name in ("fusion_base", "onnx_model", "onnx_model_bert", "fusion_utils", "fusion_options")
    ),
    # the token-classification head is new on every fine-tune: that is the point
    Rule("transformers.modeling_utils", r"Some weights of .* were not initialized|You should probably TRAIN"),
    # optimum / pipelines pass torch_dtype to transformers 4.56+
    Rule("transformers.configuration_utils", r"`torch_dtype` is deprecated"),
    Rule("transformers.pipelines", r"`torch_dtype` is deprecated"),
    Rule("transformers.pipelines.base", r"`torch_dtype` is deprecated|Device set to use cpu"),
    # models-from-code: MLflow cannot (and need not) pickle the ONNX session; requirements are explicit
    Rule("mlflow.pyfunc", r"Failed to infer|code_paths|infer the model signature"),
    Rule("mlflow.models.model", r"Model logged without a signature|Input example should be provided"),
    Rule("mlflow.models.signature", r"Failed to infer the model signature"),
    Rule("mlflow.utils.requirements_utils", r"Detected one or more mismatches|inferring pip requirements"),
    Rule("mlflow.tracking.fluent", r"is not found in the tracking server|Experiment with name .* not found"),
)


# Python warnings (``warnings.warn``), matched by message and the module that issues them.
WARNINGS: tuple[tuple[str, str], ...] = (
    # torch.onnx tracing of the attention mask: a constant by construction
    (r"torch\.tensor results are registered as constants in the trace", r"transformers\."),
    # models-from-code with an explicit signature (sciner.mlflow_card): type-hint inference is not used
    (r"Failed to infer signature from type hint", r"mlflow\."),
)
# MLflow issues these under its own ``simplefilter("once")`` (filters cannot reach them): :func:`mlflow_nags_dropped`
MLFLOW_NAGS = (r"Add type hints to the `predict` method", r"Type hint used in the model's predict function")


class DropKnown(logging.Filter):
    """Drops the records of one logger that match one :class:`Rule`."""

    def __init__(self, rule: Rule) -> None:
        super().__init__()
        self.rule = rule
        self.regex = re.compile(rule.pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.rule.below:
            return True
        if self.rule.path and self.rule.path not in record.pathname.replace("\\", "/"):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to judge
            return True
        return not self.regex.search(message)


def install(rules: tuple[Rule, ...] = RULES) -> None:
    for message, module in WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    for rule in rules:
        logger = logging.getLogger(rule.logger or None)
        if not any(isinstance(f, DropKnown) and f.rule == rule for f in logger.filters):
            logger.addFilter(DropKnown(rule))


@contextlib.contextmanager
def mlflow_nags_dropped(patterns: tuple[str, ...] = MLFLOW_NAGS) -> Iterator[None]:
    """Within the block, warnings matching ``patterns`` are not shown (MLflow's pyfunc type-hint advice:
    sciner logs an explicit signature instead); the previous ``showwarning`` comes back on exit."""
    regexes = [re.compile(p) for p in patterns]
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: object = None,
            line: str | None = None,
        ) -> None:
            if not any(r.search(str(message)) for r in regexes):
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
