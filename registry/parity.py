"""The parity gate: the int8 model must say what the torch model says, on the test split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from langdetect_ops.errors import UserError

MIN_AGREEMENT = 0.995  # int8 labels equal to torch fp32 labels
MAX_ACCURACY_DROP = 0.003  # 0.3 points


class ParityError(UserError):
    """The quantized model disagrees with the original: nothing is imported."""


@dataclass
class ParityReport:
    texts: int
    agreement: float
    accuracy_torch: float
    accuracy_onnx_fp32: float
    accuracy_onnx_int8: float
    max_abs_prob_diff: float
    min_agreement: float
    max_accuracy_drop: float

    @property
    def accuracy_drop(self) -> float:
        return self.accuracy_torch - self.accuracy_onnx_int8

    @property
    def passed(self) -> bool:
        return self.agreement >= self.min_agreement and self.accuracy_drop <= self.max_accuracy_drop

    def as_dict(self) -> dict:
        return {**asdict(self), "accuracy_drop": self.accuracy_drop, "passed": self.passed}


def compare(
    torch_probs: np.ndarray,
    fp32_probs: np.ndarray,
    int8_probs: np.ndarray,
    labels: Sequence[int],
    min_agreement: float = MIN_AGREEMENT,
    max_accuracy_drop: float = MAX_ACCURACY_DROP,
) -> ParityReport:
    truth = np.asarray(labels)
    torch_pred, int8_pred = torch_probs.argmax(1), int8_probs.argmax(1)
    return ParityReport(
        texts=len(truth),
        agreement=float(np.mean(torch_pred == int8_pred)),
        accuracy_torch=float(np.mean(torch_pred == truth)),
        accuracy_onnx_fp32=float(np.mean(fp32_probs.argmax(1) == truth)),
        accuracy_onnx_int8=float(np.mean(int8_pred == truth)),
        max_abs_prob_diff=float(np.abs(torch_probs - int8_probs).max()),
        min_agreement=min_agreement,
        max_accuracy_drop=max_accuracy_drop,
    )


def enforce(report: ParityReport) -> None:
    if report.passed:
        return
    raise ParityError(
        f"parity gate failed on {report.texts} test texts: int8/torch label agreement "
        f"{report.agreement:.3%} (minimum {report.min_agreement:.1%}), accuracy drop "
        f"{report.accuracy_drop * 100:.2f} points (maximum {report.max_accuracy_drop * 100:.1f}); "
        f"nothing was imported into the BentoML store"
    )
