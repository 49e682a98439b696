"""Behavioural tests of the exported int8 model (Made-With-ML style): minimum functionality, invariance
and directional expectations.

The first part runs the session's smoke model, so its bounds are loose; it still fails on a broken model,
a broken tokenizer hand-off or a wrong label order. The second part asks for exact labels on every
language and on near neighbours (es/pt, ru/bg, ar/ur, zh/ja), which a tiny model cannot be asked to get
right: it runs the project's trained @champion, the model serving is pinned to, and skips without one.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import longest_per_language

slow = pytest.mark.slow

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


@slow
def test_minimum_functionality_on_unique_scripts(classifier):
    assert predict(classifier, list(UNIQUE_SCRIPT.values())) == list(UNIQUE_SCRIPT)


@slow
@pytest.mark.parametrize("name", PERTURBATIONS)
def test_label_is_invariant_to_formatting(classifier, sentences, name):
    before = predict(classifier, sentences)
    after = predict(classifier, [PERTURBATIONS[name](t) for t in sentences])
    unchanged = sum(a == b for a, b in zip(before, after)) / len(sentences)
    assert unchanged >= 0.9, f"{name}: only {unchanged:.0%} of labels unchanged"


@slow
def test_batch_order_does_not_matter(classifier, sentences):
    forward = classifier.probabilities(sentences)
    backward = classifier.probabilities(sentences[::-1])[::-1]
    assert (forward.argmax(1) == backward.argmax(1)).all()


# --- the trained @champion: every language, and the pairs it must tell apart --------------------

# Read at collection, before the session fixtures point BENTOML_HOME at a temporary store.
USER_BENTOML_HOME = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")

# Everyday sentences, unlike the corpus's software strings and manuals, and one instruction each.
EVERY_LANGUAGE = {
    "ar": [
        "ذهبت إلى السوق صباح اليوم لشراء الخبز والفواكه الطازجة.",
        "اضغط على الزر لحفظ التغييرات قبل إغلاق النافذة.",
    ],
    "bg": ["Вчера ходихме на планина и видяхме много красиви езера.", "Натиснете бутона, за да запазите промените."],
    "de": [
        "Gestern Abend haben wir mit unseren Freunden im Garten gegrillt.",
        "Klicken Sie auf die Schaltfläche, um die Änderungen zu speichern.",
    ],
    "el": [
        "Το καλοκαίρι πηγαίνουμε συχνά στη θάλασσα με την οικογένειά μου.",
        "Πατήστε το κουμπί για να αποθηκεύσετε τις αλλαγές.",
    ],
    "en": [
        "We spent the whole afternoon walking along the river with our dog.",
        "Click the button to save your changes before closing the window.",
    ],
    "es": [
        "Mañana por la mañana vamos a visitar a mis abuelos en el pueblo.",
        "Haga clic en el botón para guardar los cambios antes de cerrar la ventana.",
    ],
    "fr": [
        "Nous avons passé une excellente soirée chez nos voisins hier soir.",
        "Cliquez sur le bouton pour enregistrer vos modifications.",
    ],
    "hi": ["कल शाम हम अपने दोस्तों के साथ बाज़ार घूमने गए थे।", "बदलाव सहेजने के लिए इस बटन पर क्लिक करें।"],
    "it": [
        "Questa sera ceniamo tutti insieme in una piccola trattoria del centro.",
        "Fai clic sul pulsante per salvare le modifiche prima di chiudere la finestra.",
    ],
    "ja": [
        "昨日は友達と一緒に公園を散歩して、とても楽しかったです。",
        "変更を保存するには、このボタンをクリックしてください。",
    ],
    "nl": [
        "Morgen gaan we met de fiets naar het strand als het mooi weer is.",
        "Klik op de knop om je wijzigingen op te slaan.",
    ],
    "pl": [
        "W weekend pojechaliśmy z rodziną nad jezioro i łowiliśmy ryby.",
        "Kliknij przycisk, aby zapisać zmiany przed zamknięciem okna.",
    ],
    "pt": [
        "No fim de semana fomos à praia com os nossos amigos e comemos peixe grelhado.",
        "Clique no botão para salvar as alterações antes de fechar a janela.",
    ],
    "ru": [
        "Вчера вечером мы долго гуляли по парку и разговаривали о жизни.",
        "Нажмите на кнопку, чтобы сохранить изменения перед закрытием окна.",
    ],
    "sw": [
        "Leo asubuhi nilienda sokoni kununua matunda na mboga za majani.",
        "Bonyeza kitufe hiki ili kuhifadhi mabadiliko yako.",
    ],
    "th": ["เมื่อวานนี้ฉันไปเที่ยวตลาดกับเพื่อนและซื้อผลไม้มากมาย", "คลิกปุ่มนี้เพื่อบันทึกการเปลี่ยนแปลงก่อนปิดหน้าต่าง"],
    "tr": [
        "Dün akşam arkadaşlarımla birlikte sahilde uzun bir yürüyüş yaptık.",
        "Değişiklikleri kaydetmek için bu düğmeye tıklayın.",
    ],
    "ur": [
        "کل شام ہم اپنے دوستوں کے ساتھ بازار گئے اور بہت مزہ آیا۔",
        "تبدیلیاں محفوظ کرنے کے لیے اس بٹن پر کلک کریں۔",
    ],
    "vi": [
        "Hôm qua tôi đã đi chợ với mẹ để mua rau và trái cây.",
        "Nhấn vào nút này để lưu các thay đổi trước khi đóng cửa sổ.",
    ],
    "zh": ["昨天晚上我和朋友们一起去饭馆吃了晚饭。", "请点击这个按钮保存您的更改，然后关闭窗口。"],
}
# Pairs that differ only in what tells two neighbours apart: the edit must move the label, one way.
DIRECTIONAL = {
    "es->pt: nao, voce, -cao": (
        ("No sé si la reunión con el director es mañana o el lunes.", "es"),
        ("Não sei se a reunião com o diretor é amanhã ou segunda, você sabe?", "pt"),
    ),
    "es->pt: the same words, -cion to -cao, no to nao": (
        ("La información de la aplicación no está disponible en este momento.", "es"),
        ("A informação da aplicação não está disponível neste momento.", "pt"),
    ),
    "es->pt: el/un/con to o/um/com, -cion to -cao": (
        ("El programa tiene un problema con la configuración.", "es"),
        ("O programa tem um problema com a configuração.", "pt"),
    ),
    "ru->bg: no yery/e/yo; shta, hard sign, article": (  # ы/э/ё out; ще, ъ, -ът in
        ("Мы ещё не знаем, когда этот поезд придёт в город.", "ru"),
        ("Ние още не знаем кога влакът ще пристигне в града.", "bg"),
    ),
    "ru->bg: shta and hard sign decide": (  # no ы/э/ё on either side
        ("Моя сестра будет работать в большом городе.", "ru"),
        ("Моята сестра ще работи в голям град със своя съпруг.", "bg"),
    ),
    "ar->ur: Urdu letters and words": (  # ے, ہ, ں, ڑ
        ("هذا الكتاب جميل جدا وأنا أحب قراءته كل يوم.", "ar"),
        ("یہ کتاب بہت اچھی ہے اور میں اسے ہر روز پڑھتا ہوں۔", "ur"),
    ),
    "zh->ja: kana between the kanji": (
        ("我每天早上在图书馆学习日语。", "zh"),
        ("私は毎朝図書館で日本語を勉強しています。", "ja"),
    ),
}
# Sentences that must keep their language although they carry foreign names or words.
INVARIANT = {
    "English with a French name": ("Yesterday I had lunch with Jean-François Lefèvre near the office.", "en"),
    "English with a French hotel and town": ("We stayed at the Hôtel de la Poste in Saint-Étienne last summer.", "en"),
    "German with English brand names": ("Ich habe mir gestern im Apple Store ein neues iPhone gekauft.", "de"),
    "French with an English film title": ("Hier soir, nous avons regardé The Lord of the Rings à la télévision.", "fr"),
    "Spanish with a German city": ("El próximo verano queremos viajar a Düsseldorf con nuestros hijos.", "es"),
}


def champion_onnx_dir(home: Path) -> Path:
    """The int8 bundle that serving is pinned to in a BentoML home; skips when there is none."""
    pin = home / "langdetect" / "pin.json"
    if not pin.is_file():
        pytest.skip(f"no @champion exported into {home} ({pin} missing): `langdetect export --alias champion`")
    name, version = json.loads(pin.read_text())["onnx"].split(":")
    bundle = home / "models" / name / version
    if not (bundle / "model.int8.onnx").is_file():
        pytest.skip(f"{pin} names {name}:{version}, which is not in {home / 'models'}")
    return bundle


@pytest.fixture(scope="module")
def champion():
    from service.inference import OnnxClassifier

    return OnnxClassifier(champion_onnx_dir(USER_BENTOML_HOME))


# Cases the champion (version 1, default profile) gets wrong: kept, strict, so that a model that gets
# them right fails here until its case leaves this list.
# Cases the pinned champion is known to get wrong (strict: a model that gets one right fails the run, so the
# entry goes). Version 1 read "French with an English film title" as en (0.75; fr 0.11); version 4 gets it right.
KNOWN_FAILURES: dict[str, str] = {}


def cases(table: dict[str, tuple]) -> list:
    return [
        pytest.param(*values, id=name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name]))
        if name in KNOWN_FAILURES
        else pytest.param(*values, id=name)
        for name, values in table.items()
    ]


EVERY_LANGUAGE_CASES = {
    f"{label}-{i}": (text, label) for label, texts in EVERY_LANGUAGE.items() for i, text in enumerate(texts)
}


def test_every_language_has_its_cases():
    from langdetect_ops.config import LANGUAGES

    assert sorted(EVERY_LANGUAGE) == sorted(LANGUAGES)


@pytest.mark.parametrize("text, label", cases(EVERY_LANGUAGE_CASES))
def test_champion_names_every_language(champion, text, label):
    assert predict(champion, [text]) == [label]


@pytest.mark.parametrize("before, after", cases(DIRECTIONAL))
def test_champion_follows_the_features_that_tell_neighbours_apart(champion, before, after):
    assert predict(champion, [before[0], after[0]]) == [before[1], after[1]]


@pytest.mark.parametrize("text, label", cases(INVARIANT))
def test_champion_keeps_the_language_around_foreign_names(champion, text, label):
    assert predict(champion, [text]) == [label]
