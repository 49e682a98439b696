"""Behavioural tests of the exported int8 model (Made-With-ML style): minimum functionality and
invariance. They run the smoke model, so the bounds are loose; they still fail on a broken model,
a broken tokenizer hand-off or a wrong label order."""

import pytest
from conftest import longest_per_language

pytestmark = pytest.mark.slow

# Languages with a script of their own: even the tiny smoke model must get these right.
UNIQUE_SCRIPT = {
    "el": "Η Ελλάδα είναι μια χώρα στη νοτιοανατολική Ευρώπη με πολλά νησιά.",
    "th": "ประเทศไทยเป็นประเทศในเอเชียตะวันออกเฉียงใต้ที่มีวัฒนธรรมหลากหลาย",
    "hi": "भारत दक्षिण एशिया में स्थित एक विशाल और विविधतापूर्ण देश है।",
    "ja": "日本は東アジアにある島国で、たくさんの美しい山があります。",
}
PERTURBATIONS = {
    "trailing space": lambda t: t + "   ",
    "exclamation": lambda t: t + "!",
    "quoted": lambda t: f"“{t}”",
    "double spaces": lambda t: t.replace(" ", "  "),
    "repeated past the window": lambda t: " ".join([t] * 50),
}


@pytest.fixture(scope="module")
def classifier(exported):
    import bentoml

    from service.inference import OnnxClassifier

    return OnnxClassifier(bentoml.models.get(exported.tags["onnx"]).path)


@pytest.fixture(scope="module")
def sentences():
    return longest_per_language()[0]


def predict(classifier, texts):
    return [classifier.labels[i] for i in classifier.probabilities(texts).argmax(1)]


def test_minimum_functionality_on_unique_scripts(classifier):
    assert predict(classifier, list(UNIQUE_SCRIPT.values())) == list(UNIQUE_SCRIPT)


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_label_is_invariant_to_formatting(classifier, sentences, name):
    before = predict(classifier, sentences)
    after = predict(classifier, [PERTURBATIONS[name](t) for t in sentences])
    unchanged = sum(a == b for a, b in zip(before, after)) / len(sentences)
    assert unchanged >= 0.9, f"{name}: only {unchanged:.0%} of labels unchanged"


def test_batch_order_does_not_matter(classifier, sentences):
    forward = classifier.probabilities(sentences)
    backward = classifier.probabilities(sentences[::-1])[::-1]
    assert (forward.argmax(1) == backward.argmax(1)).all()
