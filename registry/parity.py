"""The parity gates, on the test split: the fp32 ONNX graph must compute the torch model's logits (the
export itself is right), and the int8 model must say what the torch model says (quantisation costs little)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from langdetect_ops.errors import UserError

MIN_AGREEMENT = 0.995  # int8 labels equal to torch fp32 labels
MAX_ACCURACY_DROP = 0.003  # 0.3 points
FLOAT_SLACK = 1e-9  # 1.0 - 0.997 is 0.0030000000000000027: a drop of exactly the bound must pass
# The default model's fp32 ONNX logits differ from torch's by at most 2.9e-6 (22,307 test texts, logits
# within [-2.5, 6]); 1e-3 leaves room for deeper models and other CPUs and still catches a wrong graph.
MAX_FP32_LOGIT_DIFF = 1e-3


class ParityError(UserError):
    """An exported model (fp32 ONNX or int8) disagrees with the torch original: nothing is imported."""


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
        return self.agreement >= self.min_agreement and self.accuracy_drop <= self.max_accuracy_drop + FLOAT_SLACK

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


@dataclass
class Fp32Report:
    """The fp32 ONNX graph against torch, before quantisation: the same logits, the same labels."""

    texts: int
    max_abs_logit_diff: float
    argmax_agreement: float
    max_logit_diff: float  # the tolerance

    @property
    def passed(self) -> bool:
        # Written so that NaN logits fail: every comparison with NaN is False.
        return self.max_abs_logit_diff <= self.max_logit_diff and self.argmax_agreement == 1.0

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def compare_fp32(
    torch_logits: np.ndarray, fp32_logits: np.ndarray, max_logit_diff: float = MAX_FP32_LOGIT_DIFF
) -> Fp32Report:
    return Fp32Report(
        texts=len(torch_logits),
        max_abs_logit_diff=float(np.abs(torch_logits - fp32_logits).max()),
        argmax_agreement=float(np.mean(torch_logits.argmax(1) == fp32_logits.argmax(1))),
        max_logit_diff=max_logit_diff,
    )


def enforce_fp32(report: Fp32Report) -> None:
    if report.passed:
        return
    raise ParityError(
        f"fp32 ONNX check failed on {report.texts} test texts: max |logit difference| to torch "
        f"{report.max_abs_logit_diff:.3g} (tolerance {report.max_logit_diff:g}), argmax agreement "
        f"{report.argmax_agreement:.3%} (100% required): the ONNX export does not compute the torch model, "
        f"before any quantisation; nothing was imported into the BentoML store"
    )
