"""The `.conf` parser reads files the way Asterisk's config loader and pbx_config do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.asterisk_conf import (
    Dialplan,
    build_dialplan,
    classes,
    event_filters,
    excluded_event_names,
    load_conf,
    parse_conf,
    pattern_matches,
    split_arguments,
)

REPO = Path(__file__).resolve().parents[2]


def lab_configs() -> Path:
    """The Asterisk 22 lab configs, as the package ships them beside the captures."""
    return REPO / "ivr" / "sim" / "transcripts" / "configs"


def dialplan(text: str) -> Dialplan:
    return build_dialplan(parse_conf(text, "extensions.conf"))


def test_comments_block_comments_and_escaped_semicolons() -> None:
    """`;` ends a line, `;-- --;` spans lines, and `\\;` is a literal semicolon."""
    conf = parse_conf(
        "[a] ; a comment\nx = 1 ; trailing\n;-- block\ny = 2\n--;\nz = semi\\;colon\n"
    )
    expected = [("x", "1"), ("z", "semi;colon")]
    assert expected == [(s.name, s.value) for s in conf.categories[0].settings]
    assert () == conf.problems


def test_arrow_lines_templates_inheritance_and_append() -> None:
    """`=>` is recorded; `(!)` templates are hidden and inherited; `(+)` adds to a category."""
    conf = parse_conf(
        "[base](!)\nread = agent\n[user](base)\nsecret = s\n[user](+)\npermit => 10.0.0.1\n"
    )
    effective = conf.effective()
    assert ["user"] == [c.name for c in effective]
    assert [("read", False), ("secret", False), ("permit", True)] == [
        (s.name, s.arrow) for s in effective[0].settings
    ]


def test_problems_are_collected_with_file_and_line() -> None:
    """Lines Asterisk would warn about are reported, each with its place, and parsing goes on."""
    conf = parse_conf("orphan = 1\n[ok]\nno equal sign\n[broken\n#unknown x\n", "f.conf")
    expected = [
        "f.conf:1: 'orphan' is outside any [category] (ignored)",
        "f.conf:3: no '=' in 'no equal sign' (Asterisk ignores the line)",
        "f.conf:4: category header '[broken' has no closing ']'",
        "f.conf:5: unknown directive #unknown",
    ]
    assert sorted(expected) == sorted(str(p) for p in conf.problems)


def test_include_is_read_in_place_and_settings_after_it_join_its_last_category(
    tmp_path: Path,
) -> None:
    """As in config.c: an included file's categories come at the #include line, in order."""
    (tmp_path / "main.conf").write_text('[first]\na = 1\n#include "part.conf"\nc = 3\n[last]\n')
    (tmp_path / "part.conf").write_text("[middle]\nb = 2\n")
    conf = load_conf(tmp_path / "main.conf")
    expected = [("first", ["a"]), ("middle", ["b", "c"]), ("last", [])]
    assert expected == [(c.name, [s.name for s in c.settings]) for c in conf.categories]
    assert 2 == len(conf.files)


def test_missing_include_is_a_problem_but_tryinclude_is_not(tmp_path: Path) -> None:
    """`#include` of a missing file is reported; `#tryinclude` exists to allow it."""
    (tmp_path / "main.conf").write_text("#include nope.conf\n#tryinclude maybe.conf\n")
    conf = load_conf(tmp_path / "main.conf")
    assert ["#include nope.conf: no such file"] == [p.message for p in conf.problems]


def test_include_cycle_is_reported_not_followed(tmp_path: Path) -> None:
    """A file including itself (directly or not) is one problem, not an endless loop."""
    (tmp_path / "a.conf").write_text("[a]\n#include b.conf\n")
    (tmp_path / "b.conf").write_text("[b]\n#include a.conf\n")
    conf = load_conf(tmp_path / "a.conf")
    assert 1 == len([p for p in conf.problems if "cycle" in p.message])


def test_priorities_n_labels_and_same_lines() -> None:
    """`n` continues the previous number, `n(label)` names it, `same =>` reuses the extension."""
    plan = dialplan(
        "[ctx]\n"
        "exten => s,1,NoOp(start)\n"
        " same => n(again),Playback(x)\n"
        " same => n,Goto(again)\n"
        "exten => _X.,1,Hangup()\n"
    )
    steps = [(s.exten, s.priority, s.label, s.application) for s in plan.contexts["ctx"].steps()]
    expected = [
        ("s", 1, None, "NoOp"),
        ("s", 2, "again", "Playback"),
        ("s", 3, None, "Goto"),
        ("_X.", 1, None, "Hangup"),
    ]
    assert expected == steps
    assert () == plan.problems
    assert [] == plan.check_targets()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[c]\nsame => n,NoOp()\n", "'same =>' before any 'exten =>' in this context"),
        ("[c]\nexten => a,1,NoOp()\nexten => b,n,NoOp()\n", "priority 'n' on a new extension"),
        ("[c]\nexten => a,2,NoOp()\n", "a@c has no priority 1: never runs"),
        ("[c]\nexten => a,1,NoOp()\nexten => a,1,Hangup()\n", "priority 1 of a@c is defined twice"),
        ("[c]\nexten => a,1(x),NoOp()\n same => n(x),NoOp()\n", "label 'x' is used twice"),
        ("[c]\nexten => a,1,Set(X=1\n", "Set( has no closing parenthesis"),
        ("[c]\nfoo => bar\n", "'foo' is not a dialplan line in a context"),
    ],
)
def test_malformed_dialplan_lines_are_reported(text: str, message: str) -> None:
    """Each mistake pbx_config would warn about (or silently get wrong) is one problem."""
    problems = [p.message for p in dialplan(text).problems]
    assert any(message in problem for problem in problems), problems


def test_goto_targets_are_checked_across_contexts_patterns_and_includes() -> None:
    """Targets may be a label, an extension matched by a pattern, or in an included context."""
    plan = dialplan(
        "[a]\n"
        "include => b\n"
        "exten => s,1,Goto(b,123,1)\n"
        " same => n,Goto(inc,1)\n"
        " same => n,GotoIf($[${X} = 1]?a,s,1:nowhere,s,1)\n"
        " same => n,Gosub(b,123,lbl(arg1,arg2))\n"
        " same => n,Goto(b,123,missing)\n"
        " same => n,Goto(${DYNAMIC},s,1)\n"
        "[b]\n"
        "exten => _1XX,1,NoOp()\n"
        " same => n(lbl),Return()\n"
        "exten => inc,1,NoOp()\n"
    )
    problems = [p.message for p in plan.check_targets()]
    expected = [
        "GotoIf: context [nowhere] does not exist",
        "Goto: label 'missing' not found in 123@b",
    ]
    assert expected == problems
    assert ["${DYNAMIC},s,1"] == [str(t) for t in plan.targets() if t.dynamic]


def test_gotoif_splits_at_the_question_mark_outside_expressions() -> None:
    """A `:` or `?` inside `$[...]` (regex operator) does not split GotoIf's destinations."""
    plan = dialplan(
        '[c]\nexten => s,1,GotoIf($["${A}" : "x?y"]?yes:no)\n'
        " same => n(yes),NoOp()\n same => n(no),NoOp()\n"
    )
    assert ["c,s,yes", "c,s,no"] == [str(t) for t in plan.targets()]
    assert [] == plan.check_targets()


@pytest.mark.parametrize(
    ("pattern", "exten", "matches"),
    [
        ("_X.", "1234", True),
        ("_X.", "1", False),
        ("_NXX", "212", True),
        ("_NXX", "112", False),
        ("_Z!", "5", True),
        ("_[a-c]X", "b7", True),
        ("_555-1XXX", "5551234", True),
        ("_2XXX", "3000", False),
    ],
)
def test_extension_patterns_match_like_asterisk(pattern: str, exten: str, matches: bool) -> None:
    """X, Z, N, [sets], `.` (one or more) and `!` (zero or more); dashes are ignored."""
    assert matches == pattern_matches(pattern, exten)


def test_arguments_split_at_top_level_commas_only() -> None:
    """Commas inside (), ${} and quotes belong to their argument, as ast_app_separate_args does."""
    expected = ["agi://h:4573/nps", "${CHANNEL(linkedid)}", 'x="a,b"', "${IF($[1]?a:b)}"]
    assert expected == split_arguments(
        'agi://h:4573/nps,${CHANNEL(linkedid)},x="a,b",${IF($[1]?a:b)}'
    )


def test_manager_event_filters_in_both_syntaxes() -> None:
    """Advanced `eventfilter(action(exclude),name(X)) =` and legacy `eventfilter = !Event: X`."""
    conf = parse_conf(
        "[u]\nread = agent, call\n"
        "eventfilter(action(exclude),name(VarSet)) =\n"
        "eventfilter(name(Newchannel),header(Channel),method(starts_with)) = PJSIP/\n"
        "eventfilter = !Event: Cdr\n"
    )
    category = conf.categories[0]
    assert frozenset({"agent", "call"}) == classes(category.get("read"))
    assert frozenset({"VarSet", "Cdr"}) == excluded_event_names(event_filters(category))


def test_every_lab_config_of_asterisk_22_parses_cleanly() -> None:
    """Every config file of the 22.10.1 lab loads with no problem (repeated pjsip names too)."""
    files = sorted(lab_configs().rglob("*.conf"))
    assert len(files) >= 15
    problems = [str(p) for f in files for p in load_conf(f).problems]
    assert [] == problems


def test_lab_dialplan_targets_exist_and_agi_is_where_the_captures_say(tmp_path: Path) -> None:
    """extensions.conf + extensions-transfers.conf (#included, as in the lab) are consistent.

    The captures say the transfer callers' survey is AGI at priority 6 with the
    Linkedid as first argument; the parser finds exactly that.
    """
    configs = lab_configs()
    main = tmp_path / "extensions.conf"
    main.write_text(
        (configs / "extensions.conf").read_text() + "\n#include extensions-transfers.conf\n"
    )
    (tmp_path / "extensions-transfers.conf").write_text(
        (configs / "extensions-transfers.conf").read_text()
    )
    plan = build_dialplan(load_conf(main))
    assert () == plan.problems
    assert [] == plan.check_targets()
    agi = [(s.context, s.exten, s.priority, s.data) for s in plan.applications("AGI")]
    assert ("transfer-callers", "s", 6, "${AGI_URL},${CHANNEL(linkedid)}") in agi
    assert {
        "agents",
        "callers",
        "survey",
        "caller-bot",
        "transfer-callers",
        "transfer-targets",
    } == set(plan.contexts)


def test_lab_least_privilege_listener_matches_fact_44() -> None:
    """The lab's listener reads agent,call,system,user and has 23 exclude filters (fact 44)."""
    conf = load_conf(lab_configs() / "manager-least-privilege.conf")
    listener = next(c for c in conf.effective() if c.name == "ivrlistener")
    filters = event_filters(listener)
    assert frozenset({"agent", "call", "system", "user"}) == classes(listener.get("read"))
    assert 23 == len(filters)
    assert 23 == len(excluded_event_names(filters))
