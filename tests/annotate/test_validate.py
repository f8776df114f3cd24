import pytest

from dp_cli.annotate.offline import rewrite
from dp_cli.annotate.prompts import load_template
from dp_cli.annotate.records import parse_record
from dp_cli.annotate.validate import check_answer, mentions

ITEM = parse_record({"base_description": "A woman with long black hair wears a black shirt and black boots.",
                     "reference_attribute_list": ["gold hair", "white sandals"]}, 0, "x")
GOOD = "A woman with gold hair wears a black shirt and white sandals."


def test_accepts_a_good_answer_and_strips_wrapping():
    assert check_answer(ITEM, GOOD, "stop").ok
    v = check_answer(ITEM, f'Rewritten sentence: "{GOOD}"', "stop")
    assert v.ok and v.text == GOOD


@pytest.mark.parametrize("content, finish, refusal, reason", [
    ("", "stop", None, "empty"),
    ("   ", "stop", None, "empty"),
    (None, "stop", None, "empty"),
    (GOOD[:20], "length", None, "truncated"),
    ("I'm sorry, but I can't help with that.", "stop", None, "refusal"),
    ("I apologize, I cannot rewrite this.", "stop", None, "refusal"),
    (None, "stop", "I refuse", "refusal"),
    (GOOD, "content_filter", None, "refusal"),
    ("A woman with gold hair wears a black shirt and black boots.", "stop", None, "missing_attribute"),
    ("A woman with black hair wears a black shirt and white sandals.", "stop", None, "missing_attribute"),
])
def test_rejections(content, finish, refusal, reason):
    assert check_answer(ITEM, content, finish, refusal=refusal).reason == reason


def test_echoed_prompt_is_rejected():
    tpl = load_template("v1")
    prompt = tpl.messages(ITEM)[-1]["content"]
    assert check_answer(ITEM, prompt, "stop", echo_markers=tpl.echo_markers()).reason == "echoed_prompt"
    assert check_answer(ITEM, GOOD, "stop", echo_markers=tpl.echo_markers()).ok


def test_structured_answers():
    assert check_answer(ITEM, '{"rewritten": "%s", "attributes_used": []}' % GOOD, "stop", structured=True).ok
    assert check_answer(ITEM, GOOD, "stop", structured=True).reason == "malformed"


def test_mentions_checks_nouns_as_words_and_key_words():
    assert mentions("He wears a light-blue shirt.", "light-blue shirt")
    assert mentions("She has white sandal straps.", "white sandals")  # singular/plural of the noun
    assert not mentions("He wears a blue shirtdress.", "blue shirt")  # noun must be a word
    assert not mentions("He wears a shirt.", "striped shirt")  # key word missing


def test_offline_rewrite_passes_validation():
    text = rewrite(ITEM)
    assert text == "A woman with gold hair wears a black shirt and white sandals."
    assert check_answer(ITEM, text, "stop").ok
