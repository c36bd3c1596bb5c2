"""Topic trees (smolsynth.topics): edits by hand, the model's expansion with its filters, per-leaf prompts, coverage."""

from __future__ import annotations

import doctest
import json

import pytest

import smolsynth.topics
from smolsynth.topics import TopicTree, coverage, leaf_prompts, subtopic_schema


def test_doctests() -> None:
    result = doctest.testmod(smolsynth.topics)
    assert result.failed == 0 and result.attempted > 0


def test_edits_take_paths_with_or_without_the_root() -> None:
    tree = TopicTree("Travel").add("Packing > Rain gear").add("Travel > Packing > Shoes").add("Money")
    assert tree.leaves() == ["Travel > Packing > Rain gear", "Travel > Packing > Shoes", "Travel > Money"]
    tree.add("packing > rain  GEAR")  # the same topic, spelled otherwise: nothing changes
    assert len(tree.leaves()) == 3
    tree.rename("Packing", "Luggage").remove("Luggage > Shoes")
    assert tree.leaves() == ["Travel > Luggage > Rain gear", "Travel > Money"]
    assert tree.depth() == 2


def test_bad_edits_name_the_problem() -> None:
    tree = TopicTree("Travel").add("Packing").add("Money")
    with pytest.raises(KeyError, match="has no subtopic 'Visas'"):
        tree.remove("Visas")
    with pytest.raises(ValueError, match="already has it"):
        tree.rename("Money", "packing")
    with pytest.raises(ValueError, match="path"):
        tree.add("Packing >  > Shoes")
    with pytest.raises(ValueError, match="root"):
        TopicTree("  ")


def test_save_and_load_keep_the_tree_and_who_made_each_topic(tmp_path) -> None:
    tree = TopicTree("Travel").add("Packing").add("Packing > Shoes", source="model")
    loaded = TopicTree.load(tree.save(tmp_path / "tree.json"))
    assert loaded.to_dict() == tree.to_dict()
    assert loaded.root.find("Packing").find("Shoes").source == "model"
    assert json.loads((tmp_path / "tree.json").read_text())["name"] == "Travel"


def test_leaf_prompts_carry_topic_path_guidance_and_examples() -> None:
    tree = TopicTree("Travel").add("Packing > Shoes").add("Money")
    rows = leaf_prompts(tree, "Ask about {topic} ({path}).", guidance="Be brief.", examples=["Which shoes?"])
    assert [r["topic_path"] for r in rows] == tree.leaves()
    assert rows[0]["topic"] == "Shoes" and rows[0]["guidance"] == "Be brief."
    assert rows[0]["instruction"] == "Ask about Shoes (Travel > Packing > Shoes).\nGuidance: Be brief.\n" \
                                     "Examples of good ones:\n- Which shoes?"
    assert leaf_prompts(tree, "Ask about {topic}.")[1]["guidance"] is None
    with pytest.raises(ValueError, match=r"\{topic\}"):
        leaf_prompts(tree, "Ask about travel.")
    with pytest.raises(TypeError, match="TopicTree"):
        leaf_prompts({"Travel": []}, "Ask about {topic}.")


def test_coverage_lists_every_leaf_per_run() -> None:
    tree = TopicTree("T").add("A").add("B").add("C")
    rows = [{"topic_path": "T > A", "run_id": "r1"}, {"topic_path": "T > A", "run_id": "r2"},
            {"topic_path": "T > B", "run_id": "r2"}]
    table = coverage(rows, tree)
    assert table.loc["T > A"].to_dict() == {"r1": 1, "r2": 1, "total": 2}
    assert table.loc["T > C", "total"] == 0
    with pytest.raises(ValueError, match="topic_path"):
        coverage([{"generation": "x"}], tree)


def test_expand_adds_per_node_subtopics_level_by_level_and_counts_what_it_drops() -> None:
    tree = TopicTree("Weather").add("Rain")  # a human topic: the model fills in beside and under it
    result = tree.expand(depth=2, per_node=2, model="smolsynth/tiny", progress=False, cache=False)
    top = tree.root.subtopics
    assert len(top) == 2 and top[0].name == "Rain" and top[0].source == "human" and top[1].source == "model"
    assert all(len(node.subtopics) == 2 for node in top)  # the second level was filled for both
    assert tree.depth() == 2
    # every proposal is accounted for: kept (added to the tree) or dropped with a reason
    model_topics = [t for node in [tree.root, *top] for t in node.subtopics if t.source == "model"]
    assert len(result.rows) == len(model_topics) == 5
    proposed = len(result.rows) + sum(1 for r in result.dropped_rows if r["topic"] is not None)
    assert proposed == 3 * (2 + 2)  # three nodes expanded, per_node + 2 names each
    assert set(result.report.dropped) <= {"not_needed", "duplicate", "repeats_sibling", "repeats_ancestor"}
    assert [s.step for s in result.steps] == ["expand level 1", "expand level 2"]
    # a full tree is left as it is
    again = tree.expand(depth=2, per_node=2, model="smolsynth/tiny", progress=False, cache=False)
    assert again.rows == [] and again.steps == []


def test_the_filters_drop_repeats_of_siblings_ancestors_and_each_other() -> None:
    from smolsynth.topics import Topic, _verdict

    node = Topic("Rain", [Topic("Umbrellas")])
    answered: set = set()
    verdicts = []
    for name in ["umbrellas", "Weather", "Storms", "storms", "Fog", "Snow"]:
        verdicts.append(_verdict(name, ["Weather", "Rain"], node, 3, answered))
        answered.add(smolsynth.topics.normalize_text(name))
        if verdicts[-1] is None:
            node.subtopics.append(Topic(name, source="model"))
    assert verdicts == ["repeats_sibling", "repeats_ancestor", None, "duplicate", None, "not_needed"]


def test_expand_checks_its_arguments_before_loading_a_model() -> None:
    tree = TopicTree("Weather")
    with pytest.raises(ValueError, match="depth"):
        tree.expand(depth=0, model="no/such-model")
    with pytest.raises(ValueError, match="per_node"):
        tree.expand(per_node=50, model="no/such-model")
    with pytest.raises(ValueError, match="guidance"):
        tree.expand(guidance=" ", model="no/such-model")


def test_subtopic_schema_holds_n_names() -> None:
    spec = subtopic_schema(4)["properties"]["subtopics"]
    assert spec["minItems"] == spec["maxItems"] == 4 and spec["items"]["pattern"].startswith("^[A-Z]")


def test_drop_echoes_drops_copied_guidance_and_examples_in_text_and_records() -> None:
    from smolsynth.topics import drop_echoes

    rows = [{"generation": "Cities from every continent, not only the US.", "guidance": "Cities from every continent"},
            {"generation": "Is it cold in Oslo?", "guidance": "Cities from every continent"},
            {"generation": "is it RAINY in lima", "examples": ["Is it rainy in Lima?"]},
            {"record": {"request": "Write one short question.", "call": {"city": "Oslo"}},
             "guidance": "write one short question"}]
    result = drop_echoes(rows[:3])
    assert [r["generation"] for r in result.rows] == ["Is it cold in Oslo?"]
    assert [r["reason"] for r in result.dropped_rows] == ["copies_guidance", "copies_example"]
    assert drop_echoes(rows[3:], column="record").report.dropped == {"copies_guidance": 1}


def test_leaf_prompts_record_the_examples_they_show() -> None:
    rows = leaf_prompts(TopicTree("T").add("A"), "About {topic}.", examples=["One.", "Two."])
    assert rows[0]["examples"] == ["One.", "Two."] and rows[0]["instruction"].endswith("- One.\n- Two.")
