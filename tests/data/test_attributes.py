"""Attribute lexicon and caption helpers shared by train, edit and annotate."""

import numpy as np
import pytest

from dp_cli.data import attributes as A


def test_parse_types_seed_spelling_and_list():
    assert A.parse_types("hair_uppercloth_bottomcloth") == ("hair", "uppercloth", "bottomcloth")
    assert A.parse_types(["shoes", "hair", "shoes"]) == ("shoes", "hair")
    # the comma form --help shows a list default in, also within repeated options
    assert A.parse_types("hair,uppercloth,bottomcloth") == ("hair", "uppercloth", "bottomcloth")
    assert A.parse_types(["hair,shoes", "bag"]) == ("hair", "shoes", "bag")
    with pytest.raises(ValueError, match="unknown attribute type"):
        A.parse_types("hair_wings")


def test_find_nouns_and_adjective_phrase():
    cap = "A woman with long black hair is wearing a black shirt, a pair of black boots and a red and yellow skirt."
    hits = A.find_nouns(cap)
    assert [(h.type, h.noun) for h in hits] == [("hair", "hair"), ("uppercloth", "shirt"),
                                                ("shoes", "boots"), ("bottomcloth", "skirt")]
    skirt = hits[-1]
    assert cap[skirt.phrase_start:skirt.end] == "red and yellow skirt"
    shirt = hits[1]
    assert cap[shirt.phrase_start:shirt.end] == "black shirt"
    assert cap[hits[0].phrase_start:hits[0].end] == "long black hair"


def test_and_between_garments_is_not_an_adjective():
    cap = "He wears a grey t-shirt and blue jeans."
    hits = A.find_nouns(cap)
    assert [h.noun for h in hits] == ["t-shirt", "jeans"]
    assert cap[hits[1].phrase_start:hits[1].end] == "blue jeans"


def test_type_filter_and_first_noun():
    cap = "A man in a white tank top and shorts."
    assert A.first_noun(cap, "uppercloth").noun == "tank top"
    assert A.find_nouns(cap, ("hair",)) == []


def test_drop_adjectives_substitute_and_add_phrase():
    cap = "A lady with long black hair wears a red and yellow skirt."
    hits = A.find_nouns(cap)
    assert A.drop_adjectives(cap, hits) == "A lady with hair wears a skirt."
    assert A.substitute(cap, hits[1], "white skirt") == "A lady with long black hair wears a white skirt."
    assert A.add_phrase("A man in a coat.", "shoes", "white sandals") == "A man in a coat, and white sandals."


def test_label_ids_and_masks():
    assert A.label_ids("shoes") == (9, 10)
    assert A.label_ids("bottomcloth") == (5, 6)
    assert A.label_ids("bottomcloth", "lip") == (9, 10, 12)
    parsing = np.array([[0, 2, 9], [10, 5, 4]], dtype=np.uint8)
    assert A.attribute_mask(parsing, "shoes").tolist() == [[False, False, True], [True, False, False]]


def test_head_noun_of_an_of_phrase_carries_the_attribute():
    from dp_cli.data.attributes import drop_adjectives, find_nouns
    from dp_models.edit_pipeline import build_edit_prompt

    caption = "The lady has a bun of black hair."
    (m,) = find_nouns(caption, ("hair",))
    assert (m.noun, caption[m.phrase_start:m.end]) == ("hair", "bun of black hair")
    assert drop_adjectives(caption, [m]) == "The lady has a hair."
    prompt = build_edit_prompt(caption, [("hair", "gold hair")], label_in_prompt=True)
    assert prompt.text == "The lady has a gold hair."
    assert prompt.bindings[0].replaced == "bun of black hair"
    s, e = prompt.spans[0]
    assert prompt.text[s:e] == "hair"
    # other types and other nouns after "of" are left alone
    assert [n.noun for n in find_nouns("A man with a ponytail of brown hair and a bag of books.")] == ["hair", "bag"]
    assert [n.noun for n in find_nouns("A shirt of a woman with red hair.")] == ["shirt", "hair"]
