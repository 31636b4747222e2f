"""jwz threading: reference chains, missing parents, subject-only merges, loops."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xfer.news.threads import base_subject, thread


def places(articles):  # type: ignore[no-untyped-def]
    return {mid: (info.thread_id, info.depth) for mid, info in thread(articles).items()}


def test_reference_chain() -> None:
    got = places([("<a>", [], "x"), ("<b>", ["<a>"], "Re: x"), ("<c>", ["<a>", "<b>"], "Re: x"), ("<d>", ["<a>"], "Re: x")])
    assert got == {"<a>": ("<a>", 0), "<b>": ("<a>", 1), "<c>": ("<a>", 2), "<d>": ("<a>", 1)}


def test_reply_arriving_before_parent() -> None:
    got = places([("<c>", ["<a>", "<b>"], "Re: x"), ("<a>", [], "x")])
    # <b> was never seen: an empty container, pruned; <c> hangs under <a>
    assert got == {"<a>": ("<a>", 0), "<c>": ("<a>", 1)}


def test_missing_root_with_several_replies_keeps_dummy() -> None:
    got = places([("<b>", ["<gone>"], "Re: y"), ("<c>", ["<gone>"], "Re: y")])
    assert got == {"<b>": ("<gone>", 1), "<c>": ("<gone>", 1)}


def test_single_reply_to_missing_parent_is_promoted() -> None:
    assert places([("<b>", ["<gone>"], "Re: z")]) == {"<b>": ("<b>", 0)}


def test_subject_only_threading() -> None:
    got = places([("<r>", [], "Re: topic"), ("<o>", [], "Topic"), ("<s>", [], "topic"), ("<u>", [], "other")])
    assert got["<r>"] == ("<o>", 1)  # a reply joins the original
    assert got["<s>"][0] == got["<o>"][0]  # two non-replies share a dummy: same thread
    assert got["<s>"][1] == 0 and got["<o>"][1] == 0
    assert got["<u>"] == ("<u>", 0)


def test_reference_loop_does_not_hang() -> None:
    got = places([("<a>", ["<b>"], "x"), ("<b>", ["<a>"], "x")])
    assert set(got) == {"<a>", "<b>"} and got["<a>"][0] == got["<b>"][0]


def test_crosspost_counted_once() -> None:
    assert places([("<a>", [], "x"), ("<a>", [], "x")]) == {"<a>": ("<a>", 0)}


def test_deep_thread() -> None:
    chain = [(f"<{i}>", [f"<{j}>" for j in range(i)][-5:], "Re: deep") for i in range(3000)]
    assert places(chain)["<2999>"][1] == 2999


def test_base_subject() -> None:
    assert base_subject("Re: RE: Aw: Fwd[2]:  Hello   World") == ("hello world", True)
    assert base_subject("Hello") == ("hello", False)


ids = st.sampled_from([f"<{i}>" for i in range(8)])


@given(st.lists(st.tuples(ids, st.lists(ids, max_size=4), st.sampled_from(["a", "Re: a", "b", ""])), max_size=20))
def test_every_article_placed_once(articles) -> None:  # type: ignore[no-untyped-def]
    got = thread(articles)
    assert set(got) == {mid for mid, _, _ in articles}
    assert all(info.depth >= 0 for info in got.values())
